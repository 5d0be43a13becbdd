/**
 * `dump(value, path, { compress })` and `load(path)`: persist a value to one file and read it back.
 *
 * The value is encoded with V8's structured serialization (`v8.serialize`): typed arrays, `Map`, `Set`,
 * `Date`, `BigInt`, `RegExp`, errors, nested objects and arrays, shared references and cycles. No code is
 * ever executed on load (unlike Python's pickle): the file holds data only, class instances come back as
 * plain objects, and functions cannot be stored at all.
 *
 * File format (all integers little-endian):
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0  | 8 | magic `89 4A 4C 54 53 0D 0A 1A` ("\x89JLTS\r\n\x1a") |
 * | 8  | 2 | format version (1) |
 * | 10 | 1 | compression method: 0 none, 1 gzip, 2 deflate, 3 brotli, 4 zstd |
 * | 11 | 1 | compression level |
 * | 12 | 4 | flags: bit 0 = payload checksum present |
 * | 16 | 8 | stored payload length (after compression) |
 * | 24 | 8 | raw payload length (before compression) |
 * | 32 | 4 | metadata length (UTF-8 JSON, space-padded to a multiple of 8) |
 * | 36 | 4 | reserved (0) |
 * | 40 | 8 | XXH64 of the stored payload (0 when the flag is off) |
 * | 48 | 8 | XXH64 of bytes 0..47 followed by the metadata |
 * | 56 | 8 | reserved (0; anything else is damage) |
 * | 64 | n | metadata, then the payload |
 *
 * The (uncompressed) payload keeps typed arrays out of the V8 stream, 8-byte aligned, so `dump` writes them
 * straight from the caller's memory and `load` returns views over the file buffer without copying:
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0  | 8 | V8 stream length `s` |
 * | 8  | 4 | typed-array block count `k` |
 * | 12 | 4 | reserved (0) |
 * | 16 | 16·k | per block: offset from payload start, byte length (u64 each) |
 * | …  | s | `v8.Serializer` stream; each typed array or DataView is a host object: type code, block index |
 * | …  | … | the blocks, each starting at a multiple of 8 |
 */
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultDeserializer, DefaultSerializer } from 'node:v8';
import { threadId } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { Xxh64 } from '@node-rs/xxhash';
import { describeWriteFailure, JoblibError, systemErrorCode } from './errors.ts';
import { CHECKSUM_SEED, checksum64 } from './hash.ts';
import { checkKnownOptions } from './known-options.ts';

export type CompressMethod = 'gzip' | 'deflate' | 'brotli' | 'zstd';

/**
 * `false`/`0`: no compression. `true`: gzip level 3. `1`-`9`: gzip at that level. A method name: that method
 * at its default level (gzip/deflate 3, brotli 4, zstd 3). `[method, level]`: gzip/deflate 0-9, brotli 0-11,
 * zstd 1-22 (zstd needs Node 22.15+ / 23.8+).
 */
export type Compress = boolean | number | CompressMethod | readonly [CompressMethod, number];

export interface DumpOptions {
  compress?: Compress;
  /** Store an XXH64 checksum of the payload, verified by `load`. Default true. */
  checksum?: boolean;
}

const DUMP_OPTION_KEYS: Record<keyof DumpOptions, true> = { compress: true, checksum: true };
const DUMP_OPTION_NAMES: readonly string[] = Object.keys(DUMP_OPTION_KEYS);

export interface DumpResult {
  /** Absolute path of the written file. */
  path: string;
  /** Size of the file in bytes. */
  bytes: number;
  method: CompressMethod | 'none';
  level: number;
}

export type PersistErrorCode =
  | 'ERR_DUMP_OPTION'
  | 'ERR_DUMP_SERIALIZE'
  | 'ERR_DUMP_UNSUPPORTED_METHOD'
  | 'ERR_DUMP_FOREIGN'
  | 'ERR_DUMP_TRUNCATED'
  | 'ERR_DUMP_VERSION'
  | 'ERR_DUMP_CORRUPT'
  /** The file could not be written (a full disk, no permission...): `systemCode` says which. */
  | 'ERR_DUMP_WRITE';

/** Thrown by `dump`/`load` for bad options, unserializable values, and unreadable files. */
export class PersistError extends JoblibError {
  override readonly name = 'PersistError';
  readonly code: PersistErrorCode;
  /** The file concerned, when there is one. */
  readonly path: string | undefined;
  /** The operating system's code when a file operation failed: `ENOSPC`, `EACCES`, `EROFS`... */
  readonly systemCode: string | undefined;
  constructor(code: PersistErrorCode, message: string, path?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.path = path;
    this.systemCode = systemErrorCode(options?.cause);
  }
}

export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 64;
const MAGIC = Buffer.from([0x89, 0x4a, 0x4c, 0x54, 0x53, 0x0d, 0x0a, 0x1a]);
const FLAG_CHECKSUM = 1;
const METHODS: readonly (CompressMethod | 'none')[] = ['none', 'gzip', 'deflate', 'brotli', 'zstd'];
const DEFAULT_LEVEL: Record<CompressMethod, number> = { gzip: 3, deflate: 3, brotli: 4, zstd: 3 };
const LEVEL_RANGE: Record<CompressMethod, readonly [number, number]> = {
  gzip: [0, 9],
  deflate: [0, 9],
  brotli: [0, 11],
  zstd: [1, 22],
};
/** One read()/write() call moves at most this much (Linux caps a single call near 2 GiB). */
const IO_CHUNK = 1 << 30;

type ZstdFn = (buf: Uint8Array, options: object, cb: (err: Error | null, out: Buffer) => void) => void;
const zlibExtra = zlib as unknown as {
  zstdCompress?: ZstdFn;
  zstdDecompress?: ZstdFn;
  constants: Record<string, number>;
};

/** True when this Node's zlib has zstd (Node 22.15+ / 23.8+). */
export function zstdAvailable(): boolean {
  return typeof zlibExtra.zstdCompress === 'function' && typeof zlibExtra.zstdDecompress === 'function';
}

function zstdMissing(what: string, path?: string): PersistError {
  return new PersistError(
    'ERR_DUMP_UNSUPPORTED_METHOD',
    `${what}: zstd needs Node 22.15+ or 23.8+ (zlib.zstdCompress); this is Node ${process.version}. ` +
      `Use 'gzip', 'deflate' or 'brotli', or upgrade Node.`,
    path,
  );
}

export interface ResolvedCompress {
  method: CompressMethod | 'none';
  level: number;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  return String(value);
}

/** Validates a `compress` option (named `argName` in errors). */
export function resolveCompress(compress: unknown, argName = 'compress'): ResolvedCompress {
  const expected =
    `${argName}: expected false, true, a level 0-9, one of 'gzip', 'deflate', 'brotli', 'zstd', ` +
    `or [method, level]; got ${describe(compress)}`;
  if (compress === undefined || compress === false || compress === 0) return { method: 'none', level: 0 };
  if (compress === true) return { method: 'gzip', level: DEFAULT_LEVEL.gzip };
  let method: unknown;
  let level: unknown;
  if (typeof compress === 'number') {
    method = 'gzip';
    level = compress;
  } else if (typeof compress === 'string') {
    method = compress;
  } else if (Array.isArray(compress) && compress.length === 2) {
    [method, level] = compress as unknown[];
  } else {
    throw new PersistError('ERR_DUMP_OPTION', expected);
  }
  if (method !== 'gzip' && method !== 'deflate' && method !== 'brotli' && method !== 'zstd') {
    throw new PersistError('ERR_DUMP_OPTION', expected);
  }
  const m: CompressMethod = method;
  const lvl = level === undefined ? DEFAULT_LEVEL[m] : level;
  const [lo, hi] = LEVEL_RANGE[m];
  if (typeof lvl !== 'number' || !Number.isInteger(lvl) || lvl < lo || lvl > hi) {
    throw new PersistError(
      'ERR_DUMP_OPTION',
      `${argName}: the ${m} level must be an integer from ${lo} to ${hi}; got ${describe(lvl)}`,
    );
  }
  if (m === 'zstd' && !zstdAvailable()) throw zstdMissing(argName);
  if (lvl === 0 && (m === 'gzip' || m === 'deflate')) return { method: 'none', level: 0 };
  return { method: m, level: lvl };
}

function callZ(fn: ZstdFn, buf: Uint8Array, options: object): Promise<Buffer> {
  return new Promise((res, rej) => fn(buf, options, (err, out) => (err ? rej(err) : res(out))));
}

async function compressBytes(buf: Uint8Array, c: ResolvedCompress): Promise<Uint8Array> {
  switch (c.method) {
    case 'none':
      return buf;
    case 'gzip':
      return callZ(zlib.gzip as unknown as ZstdFn, buf, { level: c.level });
    case 'deflate':
      return callZ(zlib.deflate as unknown as ZstdFn, buf, { level: c.level });
    case 'brotli':
      return callZ(zlib.brotliCompress as unknown as ZstdFn, buf, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: c.level,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: Math.min(buf.byteLength, 0xffff_ffff),
        },
      });
    case 'zstd': {
      const fn = zlibExtra.zstdCompress;
      if (!fn) throw zstdMissing('compress');
      const level = zlibExtra.constants.ZSTD_c_compressionLevel ?? 100;
      return callZ(fn, buf, { params: { [level]: c.level } });
    }
  }
}

async function decompressBytes(
  buf: Uint8Array,
  method: CompressMethod | 'none',
  path: string,
): Promise<Buffer> {
  const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  switch (method) {
    case 'none':
      return asBuffer(buf);
    case 'gzip':
      return callZ(zlib.gunzip as unknown as ZstdFn, buf, {});
    case 'deflate':
      return callZ(zlib.inflate as unknown as ZstdFn, buf, {});
    case 'brotli':
      return callZ(zlib.brotliDecompress as unknown as ZstdFn, buf, {});
    case 'zstd': {
      const fn = zlibExtra.zstdDecompress;
      if (!fn) {
        throw new PersistError(
          'ERR_DUMP_UNSUPPORTED_METHOD',
          `load: ${path} is compressed with zstd, which needs Node 22.15+ or 23.8+ to read; this is Node ${process.version}`,
          path,
        );
      }
      return callZ(fn, buf, {});
    }
  }
}

export function toPath(path: unknown, fn: string): string {
  if (typeof path === 'string' && path.length > 0) return resolve(path);
  if (path instanceof URL && path.protocol === 'file:') return fileURLToPath(path);
  throw new PersistError(
    'ERR_DUMP_OPTION',
    `${fn}: path must be a non-empty string or a file: URL; got ${path === null ? 'null' : typeof path}`,
  );
}

type ViewCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView;
  BYTES_PER_ELEMENT?: number;
};
const VIEW_TYPES: [string, ViewCtor][] = [
  ['Int8Array', Int8Array],
  ['Uint8Array', Uint8Array],
  ['Uint8ClampedArray', Uint8ClampedArray],
  ['Int16Array', Int16Array],
  ['Uint16Array', Uint16Array],
  ['Int32Array', Int32Array],
  ['Uint32Array', Uint32Array],
  ['Float32Array', Float32Array],
  ['Float64Array', Float64Array],
  ['BigInt64Array', BigInt64Array],
  ['BigUint64Array', BigUint64Array],
  ['DataView', DataView as unknown as ViewCtor],
  ['Buffer', Buffer as unknown as ViewCtor],
];
const VIEW_CODE = new Map(VIEW_TYPES.map(([name], i) => [name, i]));
const CODE_BUFFER = VIEW_CODE.get('Buffer') ?? 0;

class BlockSerializer extends DefaultSerializer {
  readonly blocks: Uint8Array[] = [];
  _writeHostObject(view: ArrayBufferView): void {
    const code = Buffer.isBuffer(view)
      ? CODE_BUFFER
      : VIEW_CODE.get(Object.prototype.toString.call(view).slice(8, -1));
    if (code === undefined) throw new TypeError(`${Object.prototype.toString.call(view)} cannot be stored`);
    this.writeUint32(code);
    this.writeUint32(this.blocks.length);
    this.blocks.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  }
}

class BlockDeserializer extends DefaultDeserializer {
  constructor(
    stream: Buffer,
    private readonly payload: Buffer,
    private readonly table: { offset: number; length: number }[],
  ) {
    super(stream);
  }
  _readHostObject(): ArrayBufferView {
    const code = this.readUint32();
    const index = this.readUint32();
    const ctor = VIEW_TYPES[code]?.[1];
    const block = this.table[index];
    if (ctor === undefined || block === undefined) throw new TypeError('bad typed-array reference');
    const bpe = ctor.BYTES_PER_ELEMENT ?? 1;
    const at = this.payload.byteOffset + block.offset;
    if (at % bpe === 0)
      return new ctor(
        this.payload.buffer,
        at,
        ctor === (DataView as unknown) ? block.length : block.length / bpe,
      );
    const copy = new Uint8Array(block.length);
    copy.set(this.payload.subarray(block.offset, block.offset + block.length));
    return new ctor(copy.buffer, 0, ctor === (DataView as unknown) ? block.length : block.length / bpe);
  }
}

const ZEROS = new Uint8Array(8);

/** A serialized value: the parts of the payload, in order (typed-array contents are not copied). */
export interface RawPayload {
  parts: Uint8Array[];
  length: number;
}

/** Serializes `value`, turning DataCloneError into a PersistError that names the problem. */
export function serializeValue(value: unknown, what: string): RawPayload {
  const ser = new BlockSerializer();
  let stream: Buffer;
  try {
    ser.writeHeader();
    ser.writeValue(value);
    stream = ser.releaseBuffer();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PersistError(
      'ERR_DUMP_SERIALIZE',
      `${what}: the value cannot be stored (${reason}). Storable: primitives, BigInt, plain objects, arrays, ` +
        `typed arrays, ArrayBuffer, Map, Set, Date, RegExp, Error; not functions, symbols, or class behaviour.`,
      undefined,
      { cause: err },
    );
  }
  const k = ser.blocks.length;
  const head = Buffer.alloc(16 + 16 * k);
  head.writeBigUInt64LE(BigInt(stream.byteLength), 0);
  head.writeUInt32LE(k, 8);
  const parts: Uint8Array[] = [head, stream];
  let offset = head.length + stream.byteLength;
  for (const [i, block] of ser.blocks.entries()) {
    const pad = (8 - (offset % 8)) % 8;
    if (pad > 0) parts.push(ZEROS.subarray(0, pad));
    offset += pad;
    head.writeBigUInt64LE(BigInt(offset), 16 + 16 * i);
    head.writeBigUInt64LE(BigInt(block.byteLength), 24 + 16 * i);
    parts.push(block);
    offset += block.byteLength;
  }
  return { parts, length: offset };
}

/** Decodes a payload made by `serializeValue`; typed arrays are views over `payload` when aligned. */
function deserializePayload(payload: Buffer): unknown {
  const streamLength = Number(payload.readBigUInt64LE(0));
  const k = payload.readUInt32LE(8);
  const table: { offset: number; length: number }[] = [];
  for (let i = 0; i < k; i++) {
    const offset = Number(payload.readBigUInt64LE(16 + 16 * i));
    const length = Number(payload.readBigUInt64LE(24 + 16 * i));
    if (offset + length > payload.byteLength) throw new RangeError('typed-array block out of range');
    table.push({ offset, length });
  }
  const streamStart = 16 + 16 * k;
  if (streamStart + streamLength > payload.byteLength) throw new RangeError('stream out of range');
  const des = new BlockDeserializer(
    payload.subarray(streamStart, streamStart + streamLength),
    payload,
    table,
  );
  des.readHeader();
  return des.readValue();
}

function checksumParts(parts: Uint8Array[]): bigint {
  const h = new Xxh64(CHECKSUM_SEED);
  for (const p of parts) h.update(p);
  return h.digest();
}

export interface Encoded {
  /** Header, metadata and payload, to be written in order. */
  parts: Uint8Array[];
  bytes: number;
  compress: ResolvedCompress;
}

/** Builds the container for an already-serialized payload. */
export async function encodeContainer(
  raw: RawPayload,
  options: { compress?: ResolvedCompress; meta?: unknown; checksum?: boolean },
): Promise<Encoded> {
  const c = options.compress ?? { method: 'none', level: 0 };
  const stored: Uint8Array[] =
    c.method === 'none' ? raw.parts : [await compressBytes(Buffer.concat(raw.parts, raw.length), c)];
  const storedLength = stored.reduce((n, p) => n + p.byteLength, 0);
  let meta: Buffer = Buffer.alloc(0);
  if (options.meta !== undefined) {
    const json = JSON.stringify(options.meta);
    const n = Buffer.byteLength(json);
    const padded = Math.ceil(n / 8) * 8;
    meta = Buffer.alloc(padded, 0x20);
    meta.write(json, 0, 'utf8');
  }
  const useChecksum = options.checksum !== false;
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt16LE(FORMAT_VERSION, 8);
  header.writeUInt8(METHODS.indexOf(c.method), 10);
  header.writeUInt8(c.level, 11);
  header.writeUInt32LE(useChecksum ? FLAG_CHECKSUM : 0, 12);
  header.writeBigUInt64LE(BigInt(storedLength), 16);
  header.writeBigUInt64LE(BigInt(raw.length), 24);
  header.writeUInt32LE(meta.length, 32);
  if (useChecksum) header.writeBigUInt64LE(checksumParts(stored), 40);
  header.writeBigUInt64LE(checksum64(Buffer.concat([header.subarray(0, 48), meta])), 48);
  return {
    parts: [header, meta, ...stored],
    bytes: HEADER_BYTES + meta.length + storedLength,
    compress: c,
  };
}

async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, off, Math.min(buf.byteLength - off, IO_CHUNK));
    off += bytesWritten;
  }
}

let tmpCounter = 0;

/** A temp-file name next to `path`, unique across processes, threads and hosts sharing a directory. */
export function tempNameFor(path: string): string {
  tmpCounter = (tmpCounter + 1) % 1_000_000;
  const rand = Math.random().toString(36).slice(2, 10);
  return `${path}.${process.pid}-${threadId}-${tmpCounter}-${rand}.tmp`;
}

/** `dump` could not write `file`: the path and the system's reason, as a PersistError. */
function writeError(err: unknown, file: string): PersistError {
  return new PersistError(
    'ERR_DUMP_WRITE',
    `dump: cannot write ${file}: ${describeWriteFailure(err)}`,
    file,
    {
      cause: err,
    },
  );
}

/** How long a temp file of a dead writer is left alone (its writer may be on another host, same pid). */
const ORPHAN_TMP_GRACE_MS = 60_000;
/** Past this age a temp file is removed whoever wrote it: no write takes an hour. */
const ORPHAN_TMP_MAX_MS = 60 * 60 * 1000;
const swept = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files that writers killed mid-write left in `dir` (`<name>.<pid>-<thread>-<n>-<rand>.tmp`):
 * once per folder and process, those older than a grace period whose pid is dead, and any older than an
 * hour. Best effort: a folder that cannot be listed is left as it is.
 */
export async function sweepOrphanTemps(dir: string): Promise<void> {
  if (swept.has(dir)) return;
  swept.add(dir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    const match = /\.(\d+)-\d+-\d+-[a-z0-9]+\.tmp$/.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    try {
      const age = now - (await stat(path)).mtimeMs;
      const pid = Number(match[1]);
      const dead = pid !== process.pid && !pidAlive(pid);
      if (age > ORPHAN_TMP_MAX_MS || (dead && age > ORPHAN_TMP_GRACE_MS)) await unlink(path);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
}

/** Writes `parts` to a temp file next to `path`, then renames it over `path` (atomic on POSIX). */
export async function writeAtomic(path: string, parts: Uint8Array[]): Promise<void> {
  await sweepOrphanTemps(dirname(path));
  const tmp = tempNameFor(path);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
    for (const p of parts) if (p.byteLength > 0) await writeAll(fh, p);
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Reads a whole file with one buffer and few system calls. */
export async function readWhole(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const buf = Buffer.allocUnsafeSlow(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, Math.min(size - off, IO_CHUNK), off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/** What a file that is not a dump looks like it is, when its first bytes tell. */
function foreignKind(head: Uint8Array): string | undefined {
  const b0 = head[0];
  const b1 = head[1];
  if (b0 === 0x1f && b1 === 0x8b) return 'a gzip file';
  if (b0 === 0x28 && b1 === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'a zstd file';
  if (b0 === 0x50 && b1 === 0x4b) return 'a zip archive';
  if (b0 === 0x80 && b1 !== undefined && b1 >= 2 && b1 <= 5) return 'a Python pickle (joblib.dump?)';
  if (b0 === 0x93 && b1 === 0x4e) return 'a NumPy .npy file';
  if (b0 === 0xff && b1 !== undefined && b1 >= 0x0d && b1 <= 0x10) return 'a raw v8.serialize() buffer';
  if (b0 === 0x7b || b0 === 0x5b) return 'JSON text';
  return undefined;
}

export interface ContainerHeader {
  version: number;
  method: CompressMethod | 'none';
  level: number;
  checksum: bigint | undefined;
  storedBytes: number;
  rawBytes: number;
  metaBytes: number;
  totalBytes: number;
}

/**
 * Parses and checks the 64-byte header. `fileSize` is the whole file's size. The header checksum (bytes
 * 0..47 and the metadata) is checked before any length in it is trusted, so that a damaged byte says
 * "corrupt", not "truncated: ... where the header announces 4294975520". The metadata is read from
 * `meta`, or from `head` when it holds the whole file; with neither, only an empty metadata is checked.
 */
export function parseHeader(
  head: Uint8Array,
  fileSize: number,
  path: string,
  meta?: Uint8Array,
): ContainerHeader {
  const h = Buffer.from(head.buffer, head.byteOffset, Math.min(head.byteLength, HEADER_BYTES));
  const magicLen = Math.min(h.length, MAGIC.length);
  if (!h.subarray(0, magicLen).equals(MAGIC.subarray(0, magicLen)) || fileSize === 0) {
    const kind = fileSize === 0 ? 'an empty file' : foreignKind(h);
    const looksLike = kind ? ` (it looks like ${kind})` : '';
    throw new PersistError(
      'ERR_DUMP_FOREIGN',
      `load: ${path} is not a joblib-ts dump file${looksLike}`,
      path,
    );
  }
  if (h.length < HEADER_BYTES) {
    throw new PersistError(
      'ERR_DUMP_TRUNCATED',
      `load: ${path} is truncated: ${fileSize} bytes, shorter than the ${HEADER_BYTES}-byte header`,
      path,
    );
  }
  const headerIntact = checkHeaderSum(h, head, fileSize, path, meta);
  const version = h.readUInt16LE(8);
  if (version !== FORMAT_VERSION) {
    // Another format may checksum its header otherwise: a mismatch then cannot tell damage from news.
    const cause = headerIntact
      ? version > FORMAT_VERSION
        ? ' (the file was written by a newer joblib-ts)'
        : ''
      : ', or its header is corrupt';
    throw new PersistError(
      'ERR_DUMP_VERSION',
      `load: ${path} uses dump format version ${version}; this joblib-ts reads version ${FORMAT_VERSION}${cause}`,
      path,
    );
  }
  if (!headerIntact) {
    throw new PersistError(
      'ERR_DUMP_CORRUPT',
      `load: ${path} is corrupt: its header checksum does not match (the file was damaged after it was written)`,
      path,
    );
  }
  const method = METHODS[h.readUInt8(10)];
  if (method === undefined) {
    throw new PersistError('ERR_DUMP_CORRUPT', `load: ${path} has an unknown compression method byte`, path);
  }
  const flags = h.readUInt32LE(12);
  const storedBytes = Number(h.readBigUInt64LE(16));
  const rawBytes = Number(h.readBigUInt64LE(24));
  const metaBytes = h.readUInt32LE(32);
  const totalBytes = HEADER_BYTES + metaBytes + storedBytes;
  if (fileSize < totalBytes) {
    throw new PersistError(
      'ERR_DUMP_TRUNCATED',
      `load: ${path} is truncated: ${fileSize} bytes where the header announces ${totalBytes}`,
      path,
    );
  }
  if (fileSize > totalBytes) {
    throw new PersistError(
      'ERR_DUMP_CORRUPT',
      `load: ${path} is corrupt: ${fileSize} bytes where the header announces ${totalBytes}`,
      path,
    );
  }
  return {
    version,
    method,
    level: h.readUInt8(11),
    checksum: flags & FLAG_CHECKSUM ? h.readBigUInt64LE(40) : undefined,
    storedBytes,
    rawBytes,
    metaBytes,
    totalBytes,
  };
}

/**
 * Whether the header checksum matches, under this format's rules. Throws when the metadata the header
 * announces runs past the end of the file (a cut file, or a damaged length: either way unreadable).
 */
function checkHeaderSum(
  h: Buffer,
  head: Uint8Array,
  fileSize: number,
  path: string,
  meta: Uint8Array | undefined,
): boolean {
  const metaBytes = h.readUInt32LE(32);
  // dump pads metadata to a multiple of 8: any other length is damage.
  if (metaBytes % 8 !== 0) return false;
  if (HEADER_BYTES + metaBytes > fileSize) {
    throw new PersistError(
      'ERR_DUMP_TRUNCATED',
      `load: ${path} is truncated or its header is corrupt: ${fileSize} bytes, too short for the ${metaBytes} bytes of metadata its header announces`,
      path,
    );
  }
  // Bytes 56..63 are outside the checksum; dump writes zeros there.
  if (h.readBigUInt64LE(56) !== 0n) return false;
  const available = meta ?? head.subarray(HEADER_BYTES);
  // Only the header was read (a quick completeness check) and it announces metadata: nothing to check.
  if (available.byteLength < metaBytes) return true;
  const summed = Buffer.concat([h.subarray(0, 48), available.subarray(0, metaBytes)]);
  return checksum64(summed) === h.readBigUInt64LE(48);
}

function checkMeta(head: Uint8Array, meta: Uint8Array, path: string): unknown {
  const h = Buffer.from(head.buffer, head.byteOffset, HEADER_BYTES);
  const expect = h.readBigUInt64LE(48);
  if (checksum64(Buffer.concat([h.subarray(0, 48), meta])) !== expect) {
    throw new PersistError(
      'ERR_DUMP_CORRUPT',
      `load: ${path} is corrupt: its header checksum does not match`,
      path,
    );
  }
  if (meta.byteLength === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength).toString('utf8'));
  } catch (err) {
    throw new PersistError('ERR_DUMP_CORRUPT', `load: ${path} is corrupt: unreadable metadata`, path, {
      cause: err,
    });
  }
}

/** Decodes a whole container already in memory. */
export async function decodeContainer(buf: Buffer, path: string): Promise<{ meta: unknown; value: unknown }> {
  const header = parseHeader(buf, buf.byteLength, path);
  const metaEnd = HEADER_BYTES + header.metaBytes;
  const meta = checkMeta(buf, buf.subarray(HEADER_BYTES, metaEnd), path);
  const stored = buf.subarray(metaEnd, header.totalBytes);
  if (header.checksum !== undefined && checksum64(stored) !== header.checksum) {
    throw new PersistError(
      'ERR_DUMP_CORRUPT',
      `load: ${path} is corrupt: the payload checksum does not match (the file was damaged after it was written)`,
      path,
    );
  }
  let raw: Buffer;
  try {
    raw = await decompressBytes(stored, header.method, path);
  } catch (err) {
    if (err instanceof PersistError) throw err;
    throw new PersistError(
      'ERR_DUMP_CORRUPT',
      `load: ${path} is corrupt: ${header.method} data is damaged`,
      path,
      {
        cause: err,
      },
    );
  }
  if (raw.byteLength !== header.rawBytes) {
    throw new PersistError('ERR_DUMP_CORRUPT', `load: ${path} is corrupt: wrong decompressed length`, path);
  }
  try {
    return { meta, value: deserializePayload(raw) };
  } catch (err) {
    throw new PersistError(
      'ERR_DUMP_CORRUPT',
      `load: ${path} is corrupt: the payload cannot be decoded`,
      path,
      {
        cause: err,
      },
    );
  }
}

/**
 * The metadata of a container from its first bytes (`head`: at least the header and the metadata) and
 * its whole size. Throws a `PersistError` when they are damaged or announce another size.
 */
export function decodeContainerMeta(head: Uint8Array, size: number, path: string): unknown {
  const h = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const announced = h.length >= HEADER_BYTES ? h.readUInt32LE(32) : 0;
  const meta = h.subarray(HEADER_BYTES, HEADER_BYTES + Math.max(0, Math.min(announced, size - HEADER_BYTES)));
  parseHeader(h.subarray(0, Math.min(h.length, HEADER_BYTES)), size, path, meta);
  return checkMeta(h, meta, path);
}

/** Reads only the header and metadata of a container file (cheap: no payload read). */
export async function readContainerMeta(path: string): Promise<{ header: ContainerHeader; meta: unknown }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(Math.min(size, HEADER_BYTES));
    await fh.read(head, 0, head.length, 0);
    // The metadata is read before the header is trusted: the header checksum covers it.
    const announced = head.length === HEADER_BYTES ? head.readUInt32LE(32) : 0;
    const meta = Buffer.alloc(Math.max(0, Math.min(announced, size - HEADER_BYTES)));
    if (meta.length > 0) await fh.read(meta, 0, meta.length, HEADER_BYTES);
    const header = parseHeader(head, size, path, meta);
    return { header, meta: checkMeta(head, meta, path) };
  } finally {
    await fh.close();
  }
}

/**
 * Writes `value` to `path` (created or replaced atomically: a temp file in the same folder, then a rename;
 * the folder is created if missing). See `Compress` for `options.compress`.
 */
export async function dump(
  value: unknown,
  path: string | URL,
  options: DumpOptions = {},
): Promise<DumpResult> {
  const file = toPath(path, 'dump');
  if (typeof options !== 'object' || options === null) {
    throw new PersistError('ERR_DUMP_OPTION', `dump: options must be an object; got ${describe(options)}`);
  }
  checkKnownOptions(options, {
    where: 'dump(value, path, options)',
    known: DUMP_OPTION_NAMES,
    error: (message) => new PersistError('ERR_DUMP_OPTION', message),
  });
  const compress = resolveCompress(options.compress, 'dump: options.compress');
  const raw = serializeValue(value, 'dump');
  const enc = await encodeContainer(raw, { compress, checksum: options.checksum !== false });
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeAtomic(file, enc.parts);
  } catch (err) {
    throw writeError(err, file);
  }
  return { path: file, bytes: enc.bytes, method: compress.method, level: compress.level };
}

/**
 * Reads a file written by `dump`. The compression method is read from the file's header. Throws a
 * `PersistError` for foreign, truncated, corrupt (checksum) or newer-format files. Never executes code.
 */
export async function load<T = unknown>(path: string | URL): Promise<T> {
  const file = toPath(path, 'load');
  const buf = await readWhole(file);
  const { value } = await decodeContainer(buf, file);
  return value as T;
}
