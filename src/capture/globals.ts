/**
 * The globals a worker has of its own (those of a fresh context and Node's): a function's use of one is
 * not a capture, and a function found on one of them can be called by that name in a worker. Any other
 * global (a REPL's or a script's `var`s and functions) is the program's own.
 */
import { runInNewContext } from 'node:vm';

/**
 * Globals every worker has (those of a fresh context and Node's own), never captured. CommonJS's
 * per-module names are here too: a worker gives none of them a meaning of the caller's.
 */
const NODE_GLOBALS = [
  'process',
  'global',
  'Buffer',
  'clearImmediate',
  'setImmediate',
  'clearInterval',
  'clearTimeout',
  'setInterval',
  'setTimeout',
  'queueMicrotask',
  'structuredClone',
  'atob',
  'btoa',
  'URL',
  'URLSearchParams',
  'DOMException',
  'AbortController',
  'AbortSignal',
  'Event',
  'EventTarget',
  'CustomEvent',
  'TextEncoder',
  'TextDecoder',
  'TextEncoderStream',
  'TextDecoderStream',
  'CompressionStream',
  'DecompressionStream',
  'ReadableStream',
  'WritableStream',
  'TransformStream',
  'BroadcastChannel',
  'MessageChannel',
  'MessagePort',
  'MessageEvent',
  'Blob',
  'File',
  'performance',
  'fetch',
  'FormData',
  'Headers',
  'Request',
  'Response',
  'WebSocket',
  'crypto',
  'navigator',
  'console',
  'require',
  'module',
  'exports',
  '__filename',
  '__dirname',
];

/**
 * Globals ECMAScript gives every realm: answered without creating a fresh context (a few milliseconds,
 * once per process), which the names outside this list still need.
 */
const STANDARD_GLOBALS = new Set(
  (
    'globalThis Infinity NaN undefined eval isFinite isNaN parseFloat parseInt decodeURI decodeURIComponent ' +
    'encodeURI encodeURIComponent escape unescape Object Function Array Number Boolean String Symbol BigInt ' +
    'Date RegExp Error AggregateError EvalError RangeError ReferenceError SyntaxError TypeError URIError ' +
    'Promise Proxy Reflect Map Set WeakMap WeakSet WeakRef FinalizationRegistry JSON Math Atomics Intl ' +
    'ArrayBuffer SharedArrayBuffer DataView Int8Array Uint8Array Uint8ClampedArray Int16Array Uint16Array ' +
    'Int32Array Uint32Array Float32Array Float64Array BigInt64Array BigUint64Array'
  ).split(' '),
);

let baseline: Set<string> | undefined;

/** Whether a worker has a global of this name of its own (so the function's use of it is not a capture). */
export function isBaselineGlobal(name: string): boolean {
  if (STANDARD_GLOBALS.has(name) || NODE_GLOBALS.includes(name)) return true;
  if (!baseline) {
    baseline = new Set([
      ...Object.getOwnPropertyNames(runInNewContext('globalThis') as object),
      ...NODE_GLOBALS,
    ]);
  }
  return baseline.has(name) || /^(ReadableStream|WritableStream|Performance|Crypto|Transform)\w*$/.test(name);
}
