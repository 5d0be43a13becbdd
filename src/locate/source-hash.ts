import type { AnyFunction } from '../delayed.ts';

/**
 * tsx wraps each dynamic `import()` of TypeScript code in an interop step, and in a worker that
 * registered tsx itself the same function's text can carry that step twice. Hashing the text without
 * it lets the worker recognise a caller's function whichever way tsx compiled it.
 */
const TSX_IMPORT_INTEROP =
  /\.then\(\s*(\w+)\s*=>\s*\{\s*const (\w+)\s*=\s*"default";\s*return \1\[\2\]\s*&&\s*typeof \1\[\2\]\s*==\s*"object"\s*&&\s*"__esModule"\s*in \1\[\2\]\s*\?\s*\1\[\2\]\s*:\s*\1\s*\}\s*\)/g;

/** A short fingerprint of a function's source text (FNV-1a, 32 bits, as hex), enough to catch a mismatch. */
export function sourceHash(fn: AnyFunction): string {
  const text = Function.prototype.toString.call(fn).replace(TSX_IMPORT_INTEROP, '');
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return `${text.length}:${(hash >>> 0).toString(16)}`;
}
