/**
 * `hash(value)`: a deterministic, structural content hash for cache keys.
 *
 * The value is walked and written as a tagged, length-prefixed byte stream (so two different values can
 * never produce the same stream), which is then hashed. Large binary blocks (typed arrays, long strings)
 * are hashed in place, never copied, and their digest goes into the stream.
 *
 * The default algorithm, `'xxh64x2'`, is 128 bits made of two XXH64 digests of the same bytes under two
 * fixed seeds, computed by the native `@node-rs/xxhash` binding. Non-cryptographic and made for cache keys:
 * measured on our 2-core machine it hashes about 3.5 GB/s, where that binding's XXH3-128 does about
 * 1.1 GB/s and the fastest Node `crypto` hash (sha1, with SHA-NI) about 1.5 GB/s (see bench/hash.ts).
 * `'xxh3-128'` and Node `crypto` algorithms are available on request.
 *
 * Equality rules (on purpose, see docs/memory.md):
 * - plain object key order does not matter; only own enumerable string keys count (symbol keys are skipped);
 * - `Map` and `Set` are hashed by content, independent of insertion order;
 * - typed arrays are hashed by element type and raw bytes, without copying: a `Float32Array` and an
 *   `Int32Array` with the same bytes differ, and so do a `Buffer` and a `Uint8Array`;
 * - `-0` and `0` differ (`Object.is` semantics: `1 / x` tells them apart); every `NaN` is the same;
 * - `{ a: undefined }` and `{}` differ (`'a' in obj` tells them apart); an array hole and `undefined` differ;
 * - `1` and `1n` differ; class instances hash as their constructor name plus their own enumerable fields;
 * - cycles are refused with a `HashError` (`code: 'ERR_HASH_CYCLE'`); functions, unique symbols,
 *   `WeakMap`, `WeakSet`, `Promise` are refused (`code: 'ERR_HASH_UNSUPPORTED'`).
 */
import { createHash, getHashes } from 'node:crypto';
import { xxh3, xxh64 } from '@node-rs/xxhash';
import { JoblibError } from './errors.ts';

/** Algorithms `hash()` accepts. `'xxh3-128'` is the default. */
export type HashAlgorithm = 'xxh64x2' | 'xxh3-128' | 'md5' | 'sha1' | 'sha256' | 'sha512' | 'blake2b512';

export interface HashOptions {
  /** Hash function applied to the structural byte stream. Default `'xxh64x2'` (128 bits, 32 hex characters). */
  algorithm?: HashAlgorithm;
}

export type HashErrorCode = 'ERR_HASH_CYCLE' | 'ERR_HASH_UNSUPPORTED' | 'ERR_HASH_OPTION';

/** Thrown by `hash()` for cycles, values that have no stable content, and bad options. */
export class HashError extends JoblibError {
  override readonly name = 'HashError';
  readonly code: HashErrorCode;
  /** Where in the value the problem is, as a path like `$.a[2]` (empty for option errors). */
  readonly path: string;
  constructor(code: HashErrorCode, message: string, path = '') {
    super(message);
    this.code = code;
    this.path = path;
  }
}

const ALGORITHMS: readonly HashAlgorithm[] = [
  'xxh64x2',
  'xxh3-128',
  'md5',
  'sha1',
  'sha256',
  'sha512',
  'blake2b512',
];

/** Binary blocks up to this size are copied into the stream; larger ones are hashed in place. */
const INLINE_BLOCK = 4096;

// Tags: one byte before every value.
const T_UNDEFINED = 0x01;
const T_NULL = 0x02;
const T_TRUE = 0x03;
const T_FALSE = 0x04;
const T_NUMBER = 0x05;
const T_NAN = 0x06;
const T_BIGINT = 0x07;
const T_STRING = 0x08;
const T_SYMBOL = 0x09;
const T_ARRAY = 0x10;
const T_HOLE = 0x11;
const T_OBJECT = 0x12;
const T_INSTANCE = 0x13;
const T_MAP = 0x14;
const T_SET = 0x15;
const T_DATE = 0x16;
const T_REGEXP = 0x17;
const T_VIEW = 0x18;
const T_ARRAYBUFFER = 0x19;
const T_SHAREDARRAYBUFFER = 0x1a;
const T_BOXED = 0x1b;
const T_ERROR = 0x1c;
const T_BLOCK_INLINE = 0x20;
const T_BLOCK_DIGEST = 0x21;

interface Sink {
  /** Hashes `bytes` as a separate digest (used for large blocks and for order-free Map/Set members). */
  digestOf(bytes: Uint8Array): Uint8Array;
  /** Feeds a large binary block that is not copied. */
  feedLarge(enc: Encoder, bytes: Uint8Array): void;
  finish(enc: Encoder): string;
  finishBytes(enc: Encoder): Uint8Array;
  child(): Sink;
}

function bigintTo16(value: bigint): Uint8Array {
  const out = Buffer.allocUnsafe(16);
  out.writeBigUInt64LE(value & 0xffff_ffff_ffff_ffffn, 0);
  out.writeBigUInt64LE(value >> 64n, 8);
  return out;
}

const SEED_A = 0x6a6f626c69622d74n; // fixed forever: changing them changes every hash
const SEED_B = 0x732d6d656d6f7279n;

/** 128 bits from two XXH64 digests of `bytes` under two fixed seeds. */
function xxh64x2(bytes: Uint8Array | string): bigint {
  return (xxh64(bytes, SEED_A) << 64n) | xxh64(bytes, SEED_B);
}

function hex128(value: bigint): string {
  return value.toString(16).padStart(32, '0');
}

class XxhSink implements Sink {
  constructor(private readonly fn: (bytes: Uint8Array) => bigint) {}
  digestOf(bytes: Uint8Array): Uint8Array {
    return bigintTo16(this.fn(bytes));
  }
  feedLarge(enc: Encoder, bytes: Uint8Array): void {
    enc.byte(T_BLOCK_DIGEST);
    enc.len(bytes.byteLength);
    enc.raw(this.digestOf(bytes));
  }
  finish(enc: Encoder): string {
    return hex128(this.fn(enc.view()));
  }
  finishBytes(enc: Encoder): Uint8Array {
    return bigintTo16(this.fn(enc.view()));
  }
  child(): Sink {
    return this;
  }
}

class CryptoSink implements Sink {
  private readonly hasher;
  constructor(private readonly algorithm: string) {
    this.hasher = createHash(algorithm);
  }
  digestOf(bytes: Uint8Array): Uint8Array {
    return createHash(this.algorithm).update(bytes).digest();
  }
  feedLarge(enc: Encoder, bytes: Uint8Array): void {
    enc.byte(T_BLOCK_INLINE);
    enc.len(bytes.byteLength);
    this.hasher.update(enc.view());
    enc.reset();
    this.hasher.update(bytes);
  }
  finish(enc: Encoder): string {
    return this.hasher.update(enc.view()).digest('hex');
  }
  finishBytes(enc: Encoder): Uint8Array {
    return this.hasher.update(enc.view()).digest();
  }
  child(): Sink {
    return new CryptoSink(this.algorithm);
  }
}

const VIEW_KINDS: Record<string, number> = {
  Int8Array: 1,
  Uint8Array: 2,
  Uint8ClampedArray: 3,
  Int16Array: 4,
  Uint16Array: 5,
  Int32Array: 6,
  Uint32Array: 7,
  Float32Array: 8,
  Float64Array: 9,
  BigInt64Array: 10,
  BigUint64Array: 11,
  Float16Array: 12,
  DataView: 13,
};
const VIEW_KIND_BUFFER = 14;

function tagOf(value: object): string {
  return Object.prototype.toString.call(value).slice(8, -1);
}

function isPlainPrototype(proto: unknown): boolean {
  // `Object.prototype` of any realm (its own prototype is null), or a null-prototype object.
  return proto === null || Object.getPrototypeOf(proto) === null;
}

class Encoder {
  private buf: Buffer;
  private pos = 0;
  private readonly ancestors = new Set<object>();
  private readonly path: (string | number)[] = [];

  constructor(private readonly sink: Sink) {
    this.buf = Buffer.allocUnsafe(512);
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
  reset(): void {
    this.pos = 0;
  }
  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  /** A length or count (written as float64: exact for every safe integer). */
  len(n: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(n, this.pos);
    this.pos += 8;
  }
  f64(n: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(n, this.pos);
    this.pos += 8;
  }
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }
  str(s: string): void {
    if (s.length * 3 > INLINE_BLOCK) {
      this.block(Buffer.from(s, 'utf8'));
      return;
    }
    this.ensure(9 + s.length * 3);
    const lenAt = this.pos;
    this.pos += 8;
    const n = this.buf.write(s, this.pos, 'utf8');
    this.buf.writeDoubleLE(n, lenAt);
    this.pos += n;
  }
  block(bytes: Uint8Array): void {
    if (bytes.byteLength <= INLINE_BLOCK) {
      this.byte(T_BLOCK_INLINE);
      this.len(bytes.byteLength);
      this.raw(bytes);
    } else {
      this.sink.feedLarge(this, bytes);
    }
  }

  private where(): string {
    let out = '$';
    for (const seg of this.path) out += typeof seg === 'number' ? `[${seg}]` : `.${seg}`;
    return out;
  }

  private unsupported(what: string, hint: string): never {
    const at = this.where();
    throw new HashError(
      'ERR_HASH_UNSUPPORTED',
      `hash(value): ${what} at ${at} has no stable content to hash; ${hint}`,
      at,
    );
  }

  /** Digest of one sub-value, hashed on its own (for order-free collections). Shares cycle tracking. */
  private subDigest(fill: (e: Encoder) => void): Uint8Array {
    const sink = this.sink.child();
    const sub = new Encoder(sink);
    for (const a of this.ancestors) sub.ancestors.add(a);
    sub.path.push(...this.path);
    fill(sub);
    return sink.finishBytes(sub);
  }

  value(v: unknown): void {
    switch (typeof v) {
      case 'undefined':
        this.byte(T_UNDEFINED);
        return;
      case 'boolean':
        this.byte(v ? T_TRUE : T_FALSE);
        return;
      case 'number':
        if (Number.isNaN(v)) this.byte(T_NAN);
        else {
          this.byte(T_NUMBER);
          this.f64(v);
        }
        return;
      case 'bigint':
        this.byte(T_BIGINT);
        this.str(v.toString(16));
        return;
      case 'string':
        this.byte(T_STRING);
        this.str(v);
        return;
      case 'symbol': {
        const key = Symbol.keyFor(v);
        if (key === undefined) {
          this.unsupported(
            `a unique symbol (${String(v)})`,
            'only registered symbols (Symbol.for) can be hashed',
          );
        }
        this.byte(T_SYMBOL);
        this.str(key);
        return;
      }
      case 'function':
        this.unsupported(
          `a function (${v.name || 'anonymous'})`,
          'pass data instead, or leave this argument out of the cache key with `ignore`',
        );
        break;
      case 'object':
        if (v === null) {
          this.byte(T_NULL);
          return;
        }
        this.object(v);
        return;
    }
  }

  private object(v: object): void {
    if (ArrayBuffer.isView(v)) {
      this.arrayBufferView(v);
      return;
    }
    if (this.ancestors.has(v)) {
      const at = this.where();
      throw new HashError(
        'ERR_HASH_CYCLE',
        `hash(value): the value contains a cycle at ${at} (an object that contains itself); cyclic values cannot be hashed`,
        at,
      );
    }
    this.ancestors.add(v);
    try {
      if (Array.isArray(v)) this.array(v);
      else this.nonArray(v);
    } finally {
      this.ancestors.delete(v);
    }
  }

  private array(v: unknown[]): void {
    this.byte(T_ARRAY);
    this.len(v.length);
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) {
        this.byte(T_HOLE);
        continue;
      }
      this.path.push(i);
      this.value(v[i]);
      this.path.pop();
    }
  }

  private fields(v: object): void {
    const keys = Object.keys(v).sort();
    this.len(keys.length);
    const rec = v as Record<string, unknown>;
    for (const k of keys) {
      this.str(k);
      this.path.push(k);
      this.value(rec[k]);
      this.path.pop();
    }
  }

  private nonArray(v: object): void {
    const tag = tagOf(v);
    switch (tag) {
      case 'Map': {
        const digests: Uint8Array[] = [];
        for (const [k, val] of v as Map<unknown, unknown>) {
          digests.push(
            this.subDigest((e) => {
              e.path.push('<map key>');
              e.value(k);
              e.path.pop();
              e.path.push(typeof k === 'string' || typeof k === 'number' ? k : '<map value>');
              e.value(val);
              e.path.pop();
            }),
          );
        }
        this.sortedDigests(T_MAP, digests);
        return;
      }
      case 'Set': {
        const digests: Uint8Array[] = [];
        for (const item of v as Set<unknown>) {
          digests.push(
            this.subDigest((e) => {
              e.path.push('<set item>');
              e.value(item);
              e.path.pop();
            }),
          );
        }
        this.sortedDigests(T_SET, digests);
        return;
      }
      case 'Date':
        this.byte(T_DATE);
        this.f64((v as Date).getTime());
        return;
      case 'RegExp':
        this.byte(T_REGEXP);
        this.str((v as RegExp).source);
        this.str((v as RegExp).flags);
        return;
      case 'ArrayBuffer':
        this.byte(T_ARRAYBUFFER);
        this.block(new Uint8Array(v as ArrayBuffer));
        return;
      case 'SharedArrayBuffer':
        this.byte(T_SHAREDARRAYBUFFER);
        this.block(new Uint8Array(v as SharedArrayBuffer));
        return;
      case 'Number':
      case 'String':
      case 'Boolean':
      case 'BigInt':
        this.byte(T_BOXED);
        this.str(tag);
        this.value((v as { valueOf(): unknown }).valueOf());
        return;
      case 'Error': {
        const err = v as Error;
        this.byte(T_ERROR);
        this.str(String(err.name));
        this.str(String(err.message));
        return;
      }
      case 'WeakMap':
      case 'WeakSet':
      case 'WeakRef':
      case 'Promise':
        this.unsupported(`a ${tag}`, 'its content cannot be read');
    }
    const proto: unknown = Object.getPrototypeOf(v);
    if (isPlainPrototype(proto)) {
      this.byte(T_OBJECT);
    } else {
      this.byte(T_INSTANCE);
      const ctor = (proto as { constructor?: { name?: unknown } }).constructor;
      this.str(typeof ctor?.name === 'string' ? ctor.name : tag);
    }
    this.fields(v);
  }

  private sortedDigests(tag: number, digests: Uint8Array[]): void {
    digests.sort(Buffer.compare);
    this.byte(tag);
    this.len(digests.length);
    for (const d of digests) this.raw(d);
  }

  private arrayBufferView(v: ArrayBufferView): void {
    const kind = Buffer.isBuffer(v) ? VIEW_KIND_BUFFER : (VIEW_KINDS[tagOf(v)] ?? 0);
    if (kind === 0)
      this.unsupported(`an unknown ArrayBuffer view (${tagOf(v)})`, 'use a standard typed array');
    this.byte(T_VIEW);
    this.byte(kind);
    this.block(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
}

function makeSink(algorithm: HashAlgorithm): Sink {
  if (algorithm === 'xxh64x2') return new XxhSink(xxh64x2);
  if (algorithm === 'xxh3-128') return new XxhSink((b) => xxh3.xxh128(b));
  return new CryptoSink(algorithm);
}

let cryptoHashes: Set<string> | undefined;

function checkAlgorithm(options: HashOptions | undefined): HashAlgorithm {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new HashError(
      'ERR_HASH_OPTION',
      `hash(value, options): options must be an object, got ${typeof options}`,
    );
  }
  const algorithm = options?.algorithm ?? 'xxh64x2';
  if (!ALGORITHMS.includes(algorithm)) {
    throw new HashError(
      'ERR_HASH_OPTION',
      `hash(value, options): options.algorithm must be one of ${ALGORITHMS.map((a) => `'${a}'`).join(', ')}; got ${JSON.stringify(algorithm)}`,
    );
  }
  if (algorithm !== 'xxh64x2' && algorithm !== 'xxh3-128') {
    cryptoHashes ??= new Set(getHashes());
    if (!cryptoHashes.has(algorithm)) {
      throw new HashError(
        'ERR_HASH_OPTION',
        `hash(value, options): options.algorithm '${algorithm}' is not available in this Node build's crypto`,
      );
    }
  }
  return algorithm;
}

/**
 * Deterministic content hash of `value`, as lowercase hex (32 characters for the default `'xxh64x2'`).
 * Stable across runs, processes and threads of the same library version on little-endian machines.
 */
export function hash(value: unknown, options?: HashOptions): string {
  const algorithm = checkAlgorithm(options);
  const sink = makeSink(algorithm);
  const enc = new Encoder(sink);
  enc.value(value);
  return sink.finish(enc);
}

/** 128-bit `'xxh64x2'` digest of raw bytes or a string's UTF-8, as 32 hex characters (no structural encoding). */
export function hashBytes(bytes: Uint8Array | string): string {
  return hex128(xxh64x2(bytes));
}

/** Seed of the dump format's XXH64 checksums. */
export const CHECKSUM_SEED = SEED_A;

/** 64-bit XXH64 checksum of raw bytes (used by the dump format). */
export function checksum64(bytes: Uint8Array): bigint {
  return xxh64(bytes, SEED_A);
}
