import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HashError, hash } from '../hash.ts';
import {
  type Compress,
  decodeContainer,
  encodeContainer,
  PersistError,
  type ResolvedCompress,
  readContainerMeta,
  resolveCompress,
  serializeValue,
} from '../persist.ts';
import { cacheWarning, MemoryError } from './errors.ts';
import {
  type AnyFunction,
  type FunctionIdentity,
  functionIdentity,
  type ParsedParams,
  parseParams,
} from './identity.ts';
import {
  clearLocation,
  ENTRY_EXT,
  entryLooksComplete,
  listItems,
  pruneEmptyDirs,
  readEntryBytes,
  readFuncInfo,
  removeQuietly,
  type StoredItem,
  writeEntry,
  writeFuncInfo,
} from './store.ts';

/** Metadata stored with every cache entry, passed to `cacheValidationCallback`. */
export interface EntryMetadata {
  /** The function's cache identity (see `functionIdentity`). */
  function: string;
  /** Code version the entry belongs to (source hash or explicit `version`). */
  codeVersion: string;
  /** Hash of the arguments that are part of the key. */
  argsId: string;
  /** How long the original call took, in milliseconds. */
  durationMs: number;
  /** When the entry was written (milliseconds since the epoch). */
  time: number;
  /** Short description of each argument in the key, by parameter name (or `arg<i>`). */
  input: Record<string, string>;
  /** Node version that wrote the entry. */
  node: string;
}

export interface MemoryOptions {
  /** 0 (default): silent. 1+: a joblib-shaped banner for every computed call. 5+: cache hits. 11+: paths. */
  verbose?: number;
  /**
   * Keep the cache under this size, least recently used entries first: checked after writes (amortised:
   * whenever a tenth of the limit has been written since the last check). A number of bytes or a string
   * such as `'500M'`, `'10G'` (powers of 1024).
   */
  bytesLimit?: number | string;
  /** Compression of stored results (see `dump`). Default none. */
  compress?: Compress;
  /** Where verbose lines go. Default: `process.stderr`. */
  log?: (line: string) => void;
}

export interface CacheOptions<A extends unknown[] = unknown[]> {
  /** Parameter names or zero-based positions left out of the key (e.g. a logger or a verbosity flag). */
  ignore?: readonly (string | number)[];
  /** Overrides the Memory's `verbose` for this function. */
  verbose?: number;
  /** Return false to reject an entry (it is deleted and the call recomputed). */
  cacheValidationCallback?: (metadata: EntryMetadata) => boolean;
  /** Entries older than this many milliseconds are recomputed. */
  expiresAfterMs?: number;
  /** Stable cache namespace for this function (default: its name), e.g. `'featurize@v2'`. */
  name?: string;
  /**
   * Explicit code version. When given, editing the source does not invalidate entries; changing this
   * string does. Use it to fold in what the source hash cannot see (helpers, data files, library versions).
   */
  version?: string;
  /** Custom key: entries are looked up by `hash(key(...args))` instead of the (filtered) arguments. */
  key?: (...args: A) => unknown;
  /** What to do when a result cannot be stored: `'throw'` (default) a MemoryError, or `'warn'` and return it. */
  onStoreError?: 'throw' | 'warn';
}

export interface ReduceSizeOptions {
  /** Remove least recently used entries until the total size is at most this (bytes, or `'10G'`...). */
  bytesLimit?: number | string;
  /** Remove least recently used entries until at most this many remain. */
  itemsLimit?: number;
  /** Remove entries not used for longer than this many milliseconds. */
  ageLimitMs?: number;
}

export interface ReduceSizeResult {
  removedItems: number;
  removedBytes: number;
  remainingItems: number;
  remainingBytes: number;
}

/** A reference to a result kept in the cache (from `callAndShelve`); `get()` loads it. */
export interface ShelvedResult<T> {
  /** Loads the stored value (or returns the value when caching is off). */
  get(): Promise<T>;
  /** Removes the entry from the cache. */
  clear(): Promise<void>;
  /** The entry file, or undefined when caching is off. */
  readonly path: string | undefined;
  readonly metadata: EntryMetadata | undefined;
}

export interface CachedFunction<A extends unknown[], R> {
  /** Returns the cached result for these arguments, computing and storing it on a miss. */
  (...args: A): Promise<Awaited<R>>;
  /** Ensures the result is cached and returns a reference to it instead of the value. */
  callAndShelve(...args: A): Promise<ShelvedResult<Awaited<R>>>;
  /** True when a valid entry for these arguments exists under the current code version. Reads no value. */
  checkCallInCache(...args: A): Promise<boolean>;
  /** Calls the function even on a hit and overwrites the entry. */
  call(...args: A): Promise<{ value: Awaited<R>; metadata: EntryMetadata | undefined }>;
  /** Removes every entry of this function (all code versions). */
  clear(): Promise<void>;
  /** The wrapped function. */
  readonly func: (...args: A) => R;
  /** The function's cache identity. */
  readonly funcId: string;
  readonly memory: Memory;
}

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Parses a byte size: a non-negative number, or a string like `'512K'`, `'1.5G'`. */
export function parseBytes(value: unknown, argName: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$/i.exec(value);
    const unit = m?.[2]?.toUpperCase() ?? '';
    if (m?.[1] !== undefined && UNITS[unit] !== undefined) return Math.floor(Number(m[1]) * UNITS[unit]);
  }
  throw new MemoryError(
    'ERR_MEMORY_OPTION',
    `${argName}: expected a non-negative number of bytes or a size like '500M' or '10G'; got ${JSON.stringify(value)}`,
  );
}

function checkNonNegative(value: unknown, argName: string, integer: boolean): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw new MemoryError(
      'ERR_MEMORY_OPTION',
      `${argName}: expected a non-negative ${integer ? 'integer' : 'number'}; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s.toFixed(1)}s, ${(s / 60).toFixed(1)}min`;
}

/** A short, one-line description of a value for metadata and verbose output. */
export function describeValue(value: unknown, max = 60): string {
  let out: string;
  switch (typeof value) {
    case 'string':
      out = JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
      break;
    case 'bigint':
      out = `${value}n`;
      break;
    case 'function':
      out = `[Function ${value.name || 'anonymous'}]`;
      break;
    case 'symbol':
      out = value.toString();
      break;
    case 'object':
      if (value === null) out = 'null';
      else if (ArrayBuffer.isView(value)) {
        const n = 'length' in value ? (value as { length: number }).length : value.byteLength;
        out = `${value.constructor.name}(${n})`;
      } else if (Array.isArray(value)) {
        out =
          value.length <= 4
            ? `[${value.map((v) => describeValue(v, 12)).join(', ')}]`
            : `Array(${value.length})`;
      } else if (value instanceof Map) out = `Map(${value.size})`;
      else if (value instanceof Set) out = `Set(${value.size})`;
      else if (value instanceof Date)
        out = `Date(${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`;
      else {
        const keys = Object.keys(value);
        const name = value.constructor && value.constructor !== Object ? `${value.constructor.name} ` : '';
        out = `${name}{${keys.slice(0, 4).join(', ')}${keys.length > 4 ? ', …' : ''}}`;
      }
      break;
    default:
      out = String(value);
  }
  return out.length > max + 2 ? `${out.slice(0, max)}…` : out;
}

function resolveLocation(location: unknown): string | null {
  if (location === null) return null;
  if (location instanceof URL && location.protocol === 'file:') return fileURLToPath(location);
  if (typeof location === 'string' && location.length > 0) {
    if (location === '~' || location.startsWith('~/')) return join(homedir(), location.slice(1));
    return resolve(location);
  }
  throw new MemoryError(
    'ERR_MEMORY_OPTION',
    `new Memory(location): location must be a directory path (a non-empty string or file: URL), or null to turn caching off; got ${location === undefined ? 'undefined' : JSON.stringify(location)}`,
  );
}

function checkVerbose(value: unknown, argName: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return checkNonNegative(value, argName, false);
}

/** Functions whose code change was already reported by this thread (once per function folder). */
const warnedCodeChange = new Set<string>();
const warnedNoName = new Set<string>();

interface KeyPlan {
  params: ParsedParams | undefined;
  ignored: Set<number>;
  ignoreFrom: number;
}

function buildKeyPlan(
  fn: AnyFunction,
  ignore: readonly (string | number)[] | undefined,
  name: string,
): KeyPlan {
  const params = parseParams(Function.prototype.toString.call(fn));
  const ignored = new Set<number>();
  let ignoreFrom = Number.POSITIVE_INFINITY;
  if (ignore === undefined) return { params, ignored, ignoreFrom };
  if (!Array.isArray(ignore)) {
    throw new MemoryError(
      'ERR_MEMORY_OPTION',
      `cache(${name}, options): options.ignore must be an array of parameter names or positions; got ${JSON.stringify(ignore)}`,
    );
  }
  for (const item of ignore as unknown[]) {
    if (typeof item === 'number') {
      checkNonNegative(item, `cache(${name}, options): options.ignore position`, true);
      ignored.add(item);
      continue;
    }
    if (typeof item !== 'string') {
      throw new MemoryError(
        'ERR_MEMORY_OPTION',
        `cache(${name}, options): options.ignore entries must be parameter names or positions; got ${JSON.stringify(item)}`,
      );
    }
    const index = params?.names.indexOf(item) ?? -1;
    if (index === -1 || params === undefined) {
      const known = params
        ? params.names.filter((n) => n !== null).join(', ') || 'none'
        : 'unreadable source';
      throw new MemoryError(
        'ERR_MEMORY_OPTION',
        `cache(${name}, options): options.ignore names '${item}', which is not a parameter of ${name} (parameters found: ${known}); use a position for destructured parameters`,
      );
    }
    if (params.rest && index === params.names.length - 1) ignoreFrom = Math.min(ignoreFrom, index);
    else ignored.add(index);
  }
  return { params, ignored, ignoreFrom };
}

/**
 * `Memory(location)`: a disk cache for function results, like Python joblib's `Memory`.
 *
 * ```ts
 * const memory = new Memory('.cache/joblib');
 * const features = memory.cache(computeFeatures);
 * await features(data); // computed and stored
 * await features(data); // loaded from disk
 * ```
 */
export class Memory {
  /** Absolute cache directory, or null when caching is off. */
  readonly location: string | null;
  readonly verbose: number;
  readonly bytesLimit: number | undefined;
  readonly compress: ResolvedCompress;
  private readonly log: (line: string) => void;
  private bytesSinceSweep = 0;
  private swept = false;

  constructor(location: string | URL | null, options: MemoryOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new MemoryError(
        'ERR_MEMORY_OPTION',
        `new Memory(location, options): options must be an object; got ${JSON.stringify(options)}`,
      );
    }
    this.location = resolveLocation(location);
    this.verbose = checkVerbose(options.verbose, 'new Memory(location, options): options.verbose') ?? 0;
    this.bytesLimit =
      options.bytesLimit === undefined
        ? undefined
        : parseBytes(options.bytesLimit, 'new Memory(location, options): options.bytesLimit');
    try {
      this.compress = resolveCompress(options.compress, 'new Memory(location, options): options.compress');
    } catch (err) {
      if (err instanceof PersistError)
        throw new MemoryError('ERR_MEMORY_OPTION', err.message, { cause: err });
      throw err;
    }
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    if (this.location !== null) {
      mkdirSync(this.location, { recursive: true });
      try {
        writeFileSync(join(this.location, '.gitignore'), '# created by joblib-ts Memory\n*\n', {
          flag: 'wx',
        });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  /** Wraps `fn` so that its results are cached on disk. The result is always a Promise. */
  cache<A extends unknown[], R>(fn: (...args: A) => R, options: CacheOptions<A> = {}): CachedFunction<A, R> {
    if (typeof fn !== 'function') {
      throw new MemoryError(
        'ERR_MEMORY_OPTION',
        `memory.cache(fn): fn must be a function; got ${fn === null ? 'null' : typeof fn}`,
      );
    }
    if (typeof options !== 'object' || options === null) {
      throw new MemoryError(
        'ERR_MEMORY_OPTION',
        `memory.cache(fn, options): options must be an object; got ${JSON.stringify(options)}`,
      );
    }
    const inner = (fn as { func?: unknown }).func;
    if (typeof inner === 'function' && (fn as { memory?: unknown }).memory instanceof Memory) {
      return this.cache(inner as (...args: A) => R, options);
    }
    return makeCached(this, fn, options);
  }

  /** Removes every cached entry under this Memory's location. */
  async clear(): Promise<void> {
    if (this.location === null) return;
    await clearLocation(this.location);
  }

  /**
   * Evicts entries, least recently used first (by access time, which every cache hit sets), until all the
   * given limits hold. Never automatic unless `bytesLimit` was given to the constructor.
   */
  async reduceSize(options: ReduceSizeOptions = {}): Promise<ReduceSizeResult> {
    const bytesLimit =
      options.bytesLimit === undefined ? undefined : parseBytes(options.bytesLimit, 'reduceSize: bytesLimit');
    const itemsLimit =
      options.itemsLimit === undefined
        ? undefined
        : checkNonNegative(options.itemsLimit, 'reduceSize: itemsLimit', true);
    const ageLimitMs =
      options.ageLimitMs === undefined
        ? undefined
        : checkNonNegative(options.ageLimitMs, 'reduceSize: ageLimitMs', false);
    if (this.location === null)
      return { removedItems: 0, removedBytes: 0, remainingItems: 0, remainingBytes: 0 };
    const items = await listItems(this.location);
    items.sort((a, b) => a.atimeMs - b.atimeMs || a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
    let total = items.reduce((s, it) => s + it.size, 0);
    let count = items.length;
    const now = Date.now();
    const doomed: StoredItem[] = [];
    for (const it of items) {
      const tooOld = ageLimitMs !== undefined && now - it.atimeMs > ageLimitMs;
      const tooMany = itemsLimit !== undefined && count > itemsLimit;
      const tooBig = bytesLimit !== undefined && total > bytesLimit;
      if (!tooOld && !tooMany && !tooBig) continue;
      doomed.push(it);
      total -= it.size;
      count--;
    }
    await Promise.all(doomed.map((it) => removeQuietly(it.path)));
    if (doomed.length > 0) await pruneEmptyDirs(this.location);
    return {
      removedItems: doomed.length,
      removedBytes: doomed.reduce((s, it) => s + it.size, 0),
      remainingItems: count,
      remainingBytes: total,
    };
  }

  /** @internal Called after every stored entry: applies `bytesLimit`, amortised. */
  async afterStore(bytes: number): Promise<void> {
    if (this.bytesLimit === undefined) return;
    this.bytesSinceSweep += bytes;
    if (this.swept && this.bytesSinceSweep < this.bytesLimit / 10) return;
    this.swept = true;
    this.bytesSinceSweep = 0;
    await this.reduceSize({ bytesLimit: this.bytesLimit });
  }

  /** @internal */
  write(line: string): void {
    this.log(line);
  }
}

class NotCachedResult<T> implements ShelvedResult<T> {
  readonly path = undefined;
  readonly metadata = undefined;
  constructor(private readonly value: T) {}
  async get(): Promise<T> {
    return this.value;
  }
  async clear(): Promise<void> {}
}

/** A result kept in the cache: holds only the entry's path and metadata, loads the value on `get()`. */
export class CachedResult<T> implements ShelvedResult<T> {
  constructor(
    readonly path: string,
    readonly metadata: EntryMetadata | undefined,
  ) {}
  async get(): Promise<T> {
    const buf = await readEntryBytes(this.path);
    if (buf === undefined) {
      throw new MemoryError(
        'ERR_MEMORY_MISSING',
        `CachedResult.get(): the entry ${this.path} is no longer in the cache (cleared or evicted)`,
      );
    }
    try {
      return (await decodeContainer(buf, this.path)).value as T;
    } catch (err) {
      throw new MemoryError(
        'ERR_MEMORY_MISSING',
        `CachedResult.get(): the entry ${this.path} is unreadable`,
        {
          cause: err,
        },
      );
    }
  }
  async clear(): Promise<void> {
    await removeQuietly(this.path);
  }
  toJSON(): { path: string; metadata: EntryMetadata | undefined } {
    return { path: this.path, metadata: this.metadata };
  }
}

function makeCached<A extends unknown[], R>(
  memory: Memory,
  fn: (...args: A) => R,
  options: CacheOptions<A>,
): CachedFunction<A, R> {
  const identity: FunctionIdentity = functionIdentity(fn as AnyFunction, {
    name: options.name,
    version: options.version,
  });
  const label = identity.displayName;
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0)) {
    throw new MemoryError(
      'ERR_MEMORY_OPTION',
      `cache(${label}, options): options.name must be a non-empty string`,
    );
  }
  if (options.version !== undefined && typeof options.version !== 'string') {
    throw new MemoryError('ERR_MEMORY_OPTION', `cache(${label}, options): options.version must be a string`);
  }
  const plan = buildKeyPlan(fn as AnyFunction, options.ignore, label);
  const verbose =
    checkVerbose(options.verbose, `cache(${label}, options): options.verbose`) ?? memory.verbose;
  const expiresAfterMs =
    options.expiresAfterMs === undefined
      ? undefined
      : checkNonNegative(options.expiresAfterMs, `cache(${label}, options): options.expiresAfterMs`, false);
  const validate = options.cacheValidationCallback;
  if (validate !== undefined && typeof validate !== 'function') {
    throw new MemoryError(
      'ERR_MEMORY_OPTION',
      `cache(${label}, options): options.cacheValidationCallback must be a function (metadata) => boolean`,
    );
  }
  const keyFn = options.key;
  if (keyFn !== undefined && typeof keyFn !== 'function') {
    throw new MemoryError('ERR_MEMORY_OPTION', `cache(${label}, options): options.key must be a function`);
  }
  const onStoreError = options.onStoreError ?? 'throw';
  if (onStoreError !== 'throw' && onStoreError !== 'warn') {
    throw new MemoryError(
      'ERR_MEMORY_OPTION',
      `cache(${label}, options): options.onStoreError must be 'throw' or 'warn'; got ${JSON.stringify(onStoreError)}`,
    );
  }
  const location = memory.location;
  const funcDir = location === null ? '' : join(location, identity.dirName);
  const codeDir = join(funcDir, identity.codeVersion);
  if (location !== null && !identity.named && !warnedNoName.has(funcDir)) {
    warnedNoName.add(funcDir);
    cacheWarning(
      'JOBLIB_TS_NO_NAME',
      `[Memory] cache(): the function has no name, so it is stored as 'anonymous' and may collide with other anonymous functions; pass { name: '...' }`,
    );
  }

  let checked: Promise<void> | undefined;
  const inflight = new Map<string, Promise<{ value: Awaited<R>; metadata: EntryMetadata | undefined }>>();

  /** Once per process: record the code version, and say once if it changed since entries were stored. */
  function checkCode(): Promise<void> {
    checked ??= (async () => {
      const stored = await readFuncInfo(funcDir);
      if (stored?.codeVersion === identity.codeVersion) return;
      if (stored !== undefined && !warnedCodeChange.has(funcDir)) {
        warnedCodeChange.add(funcDir);
        cacheWarning(
          'JOBLIB_TS_CODE_CHANGED',
          `[Memory] ${label}: the function's code changed since its cached results were stored (version ${stored.codeVersion} -> ${identity.codeVersion}); earlier results will not be used and are recomputed`,
        );
      }
      await writeFuncInfo(funcDir, {
        id: identity.id,
        codeVersion: identity.codeVersion,
        source: identity.source.length > 20000 ? `${identity.source.slice(0, 20000)}…` : identity.source,
        updated: Date.now(),
      });
    })().catch((err: unknown) => {
      checked = undefined;
      throw err;
    });
    return checked;
  }

  function keyOf(args: A): { argsId: string; input: Record<string, string> } {
    const input: Record<string, string> = {};
    let material: unknown;
    if (keyFn !== undefined) {
      material = { key: keyFn(...args) };
      args.forEach((a, i) => {
        input[plan.params?.names[i] ?? `arg${i}`] = describeValue(a);
      });
    } else {
      let n = args.length;
      // A declared parameter receiving `undefined` cannot tell it from an omitted argument: f(1) == f(1, undefined).
      if (plan.params !== undefined) {
        const declared = plan.params.names.length - (plan.params.rest ? 1 : 0);
        while (n > 0 && n <= declared && args[n - 1] === undefined) n--;
      }
      const entries: [number, unknown][] = [];
      for (let i = 0; i < n; i++) {
        if (plan.ignored.has(i) || i >= plan.ignoreFrom) continue;
        entries.push([i, args[i]]);
        input[plan.params?.names[i] ?? `arg${i}`] = describeValue(args[i]);
      }
      material = entries;
    }
    try {
      return { argsId: hash(material), input };
    } catch (err) {
      if (err instanceof HashError) {
        throw new MemoryError(
          'ERR_MEMORY_ARGS',
          `${label}: the arguments cannot be used as a cache key: ${err.message.replace('hash(value): ', '')}. ` +
            `Leave such arguments out with { ignore: [...] } or give { key: (...args) => ... }`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  function callRepr(args: A): string {
    const text = `${label}(${args.map((a) => describeValue(a, 40)).join(', ')})`;
    return text.length > 200 ? `${text.slice(0, 199)}…` : text;
  }

  function isValid(meta: EntryMetadata | undefined): boolean {
    if (meta === undefined) return false;
    if (expiresAfterMs !== undefined && Date.now() - meta.time >= expiresAfterMs) return false;
    if (validate !== undefined && !validate(meta)) return false;
    return true;
  }

  /** Loads a valid entry, or undefined (removing it when it is invalid, corrupt or truncated). */
  async function lookup(path: string): Promise<{ value: Awaited<R>; metadata: EntryMetadata } | undefined> {
    const t0 = performance.now();
    const buf = await readEntryBytes(path);
    if (buf === undefined) return undefined;
    let decoded: { meta: unknown; value: unknown };
    try {
      decoded = await decodeContainer(buf, path);
    } catch (err) {
      if (!(err instanceof PersistError)) throw err;
      cacheWarning(
        'JOBLIB_TS_CORRUPT_ENTRY',
        `[Memory] ${label}: cached result ${path} is unreadable (${err.message.replace(/^load: \S+ /, '')}); recomputing it`,
      );
      await removeQuietly(path);
      return undefined;
    }
    const meta = decoded.meta as EntryMetadata | undefined;
    if (!isValid(meta)) {
      await removeQuietly(path);
      return undefined;
    }
    if (verbose >= 5) {
      memory.write(`[Memory] ${formatSeconds(performance.now() - t0)}: Loading ${label} from ${path}`);
    }
    return { value: decoded.value as Awaited<R>, metadata: meta as EntryMetadata };
  }

  async function compute(
    args: A,
    path: string,
    argsId: string,
    input: Record<string, string>,
  ): Promise<{ value: Awaited<R>; metadata: EntryMetadata | undefined }> {
    if (verbose >= 1) {
      memory.write('_'.repeat(80));
      memory.write(`[Memory] Calling ${identity.id}...`);
      memory.write(callRepr(args));
    }
    if (verbose > 10) memory.write(`[Memory] Computing ${label}, persisting in ${path}`);
    const t0 = performance.now();
    const value = (await fn(...args)) as Awaited<R>;
    const durationMs = performance.now() - t0;
    const metadata: EntryMetadata = {
      function: identity.id,
      codeVersion: identity.codeVersion,
      argsId,
      durationMs,
      time: Date.now(),
      input,
      node: process.version,
    };
    let stored: EntryMetadata | undefined = metadata;
    try {
      const raw = serializeValue(value, `${label}: result`);
      const enc = await encodeContainer(raw, { compress: memory.compress, meta: metadata });
      await writeEntry(path, codeDir, enc.parts);
      await memory.afterStore(enc.bytes);
    } catch (err) {
      stored = undefined;
      const reason = err instanceof Error ? err.message : String(err);
      if (onStoreError === 'throw') {
        throw new MemoryError(
          'ERR_MEMORY_STORE',
          `${label}: the result could not be cached (${reason}); pass { onStoreError: 'warn' } to return it uncached`,
          { cause: err },
        );
      }
      cacheWarning('JOBLIB_TS_STORE_FAILED', `[Memory] ${label}: the result could not be cached (${reason})`);
    }
    if (verbose >= 1) {
      const msg = `${label} - ${formatSeconds(durationMs)}`;
      memory.write(`${'_'.repeat(Math.max(0, 80 - msg.length))}${msg}`);
    }
    return { value, metadata: stored };
  }

  async function getOrCompute(
    args: A,
    force: boolean,
  ): Promise<{ value: Awaited<R>; metadata: EntryMetadata | undefined }> {
    const { argsId, input } = keyOf(args);
    await checkCode();
    const path = join(codeDir, `${argsId}${ENTRY_EXT}`);
    if (!force) {
      const hit = await lookup(path);
      if (hit !== undefined) return hit;
    }
    const pending = inflight.get(path);
    if (pending !== undefined && !force) return pending;
    const job = compute(args, path, argsId, input).finally(() => inflight.delete(path));
    inflight.set(path, job);
    return job;
  }

  const cached = (async (...args: A): Promise<Awaited<R>> => {
    if (location === null) return (await fn(...args)) as Awaited<R>;
    return (await getOrCompute(args, false)).value;
  }) as CachedFunction<A, R>;

  const extras = {
    async callAndShelve(...args: A): Promise<ShelvedResult<Awaited<R>>> {
      if (location === null) return new NotCachedResult((await fn(...args)) as Awaited<R>);
      const { argsId } = keyOf(args);
      await checkCode();
      const path = join(codeDir, `${argsId}${ENTRY_EXT}`);
      try {
        const { meta } = await readContainerMeta(path);
        if (isValid(meta as EntryMetadata | undefined)) return new CachedResult(path, meta as EntryMetadata);
      } catch {
        // missing or unreadable: computed below
      }
      const res = await getOrCompute(args, false);
      if (res.metadata === undefined) return new NotCachedResult(res.value);
      return new CachedResult<Awaited<R>>(path, res.metadata);
    },
    async checkCallInCache(...args: A): Promise<boolean> {
      if (location === null) return false;
      const { argsId } = keyOf(args);
      const path = join(codeDir, `${argsId}${ENTRY_EXT}`);
      if (!(await entryLooksComplete(path))) return false;
      try {
        const { meta } = await readContainerMeta(path);
        return isValid(meta as EntryMetadata | undefined);
      } catch {
        return false;
      }
    },
    async call(...args: A): Promise<{ value: Awaited<R>; metadata: EntryMetadata | undefined }> {
      if (location === null) return { value: (await fn(...args)) as Awaited<R>, metadata: undefined };
      return getOrCompute(args, true);
    },
    async clear(): Promise<void> {
      if (location === null) return;
      await rm(funcDir, { recursive: true, force: true, maxRetries: 3 });
      checked = undefined;
    },
  };
  Object.assign(cached, extras);
  Object.defineProperties(cached, {
    name: { value: fn.name, configurable: true },
    func: { value: fn, enumerable: true },
    funcId: { value: identity.id, enumerable: true },
    memory: { value: memory, enumerable: true },
  });
  return cached;
}

/** A `cacheValidationCallback` that accepts entries younger than the given duration (joblib's `expires_after`). */
export function expiresAfter(duration: {
  days?: number;
  hours?: number;
  minutes?: number;
  seconds?: number;
  milliseconds?: number;
}): (metadata: EntryMetadata) => boolean {
  const ms =
    (duration.days ?? 0) * 86_400_000 +
    (duration.hours ?? 0) * 3_600_000 +
    (duration.minutes ?? 0) * 60_000 +
    (duration.seconds ?? 0) * 1000 +
    (duration.milliseconds ?? 0);
  checkNonNegative(ms, 'expiresAfter(duration): the total duration', false);
  return (metadata) => Date.now() - metadata.time < ms;
}
