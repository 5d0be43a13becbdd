import type { AnyFunction } from '../delayed.ts';

/** A short fingerprint of a function's source text (FNV-1a, 32 bits, as hex), enough to catch a mismatch. */
export function sourceHash(fn: AnyFunction): string {
  const text = Function.prototype.toString.call(fn);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return `${text.length}:${(hash >>> 0).toString(16)}`;
}
