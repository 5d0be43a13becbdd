/** `Memory`: the cache of function results users create (on disk, or in another store), and its options. */

import { checkKnownOptions } from '../known-options.ts';
import { type Compress, PersistError, type ResolvedCompress, resolveCompress } from '../persist.ts';
import { CACHE_OPTION_NAMES, type CacheOptions } from './cache-options.ts';
import { type CacheStore, isCacheStore } from './cache-store.ts';
import { type CachedFunctionCalls, makeCached } from './cached-function.ts';
import { checkBytes, checkObject, checkVerbose, checkWaitMs, optionError } from './checks.ts';
import { DiskStore } from './disk-store.ts';
import { MemoryError } from './errors.ts';
import type { CacheHost } from './function-cache.ts';
import { checkLocation, resolveLocation } from './location.ts';
import {
  checkReduceSizeOptions,
  type ReduceSizeOptions,
  type ReduceSizeResult,
  reduceSize,
} from './reduce-size.ts';

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
  /**
   * Where entries are kept, instead of a folder: `redisStore(url)` from `joblib-ts/redis`, or your own
   * `CacheStore`. Then `new Memory({ store })`, without a location.
   */
  store?: CacheStore;
  /**
   * How long a call waits for another caller (thread, process or machine) that computes the same entry,
   * in milliseconds, before computing it itself, without the lock, with a `CacheWarning`. Default: no
   * limit (it waits while the owner lives). `0`: never waits.
   */
  lockWaitMs?: number;
}

const MEMORY_OPTION_KEYS: Record<keyof MemoryOptions, true> = {
  verbose: true,
  bytesLimit: true,
  compress: true,
  log: true,
  store: true,
  lockWaitMs: true,
};
const MEMORY_OPTION_NAMES: readonly string[] = Object.keys(MEMORY_OPTION_KEYS);

/** A function wrapped by `memory.cache()`. */
export interface CachedFunction<A extends unknown[], R> extends CachedFunctionCalls<A, R> {
  readonly memory: Memory;
}

/**
 * `Memory(location)`: a cache of function results on disk (or `Memory({ store })`: in another store, such
 * as Redis), like Python joblib's `Memory`.
 *
 * ```ts
 * const memory = new Memory('.cache/joblib');
 * const features = memory.cache(computeFeatures);
 * await features(data); // computed and stored
 * await features(data); // loaded from disk
 * ```
 */
export class Memory implements CacheHost {
  /** Absolute cache directory, or null when caching is off or entries go to another store. */
  readonly location: string | null;
  /** Where entries are kept (a `DiskStore` on `location` by default), or null when caching is off. */
  readonly store: CacheStore | null;
  readonly verbose: number;
  readonly bytesLimit: number | undefined;
  readonly compress: ResolvedCompress;
  /** How long a call waits for another owner of its entry (`Infinity`: no limit). */
  readonly lockWaitMs: number;
  private readonly log: (line: string) => void;
  private bytesSinceSweep = 0;
  private swept = false;

  constructor(location: string | URL | null, options?: MemoryOptions);
  constructor(options: MemoryOptions & { store: CacheStore });
  constructor(
    locationOrOptions: string | URL | null | (MemoryOptions & { store: CacheStore }),
    maybeOptions: MemoryOptions = {},
  ) {
    const where = 'new Memory(location, options)';
    const storeFirst =
      typeof locationOrOptions === 'object' &&
      locationOrOptions !== null &&
      !(locationOrOptions instanceof URL);
    const options: MemoryOptions = storeFirst ? (locationOrOptions as MemoryOptions) : maybeOptions;
    const location = storeFirst ? undefined : (locationOrOptions as string | URL | null);
    checkObject(options, `${where}: options`);
    checkKnownOptions(options, {
      where,
      known: MEMORY_OPTION_NAMES,
      elsewhere: {
        location: 'the location is the first argument: new Memory(location, options)',
        backend:
          "entries go to a folder (the location) or to a store: { store: redisStore(url) } from 'joblib-ts/redis'",
      },
      error: (message) => optionError(message),
    });
    if (options.store !== undefined) {
      if (!isCacheStore(options.store)) {
        throw optionError(
          `${where}: options.store must be a CacheStore (description, read, write, remove, list, removeAll), such as redisStore(url) from 'joblib-ts/redis'`,
        );
      }
      if (!storeFirst && location !== null && location !== undefined) {
        throw optionError(`${where}: give a location or options.store, not both: new Memory({ store })`);
      }
      this.location = null;
      this.store = options.store;
    } else {
      if (storeFirst)
        throw optionError(`${where}: options.store is missing; for a folder, new Memory(location, options)`);
      this.location = resolveLocation(location);
      if (this.location !== null) checkLocation(this.location);
      this.store = this.location === null ? null : new DiskStore(this.location);
    }
    this.verbose = checkVerbose(options.verbose, `${where}: options.verbose`) ?? 0;
    this.bytesLimit =
      options.bytesLimit === undefined
        ? undefined
        : checkBytes(options.bytesLimit, `${where}: options.bytesLimit`);
    try {
      this.compress = resolveCompress(options.compress, `${where}: options.compress`);
    } catch (err) {
      if (err instanceof PersistError) throw optionError(err.message, err);
      throw err;
    }
    this.lockWaitMs = checkWaitMs(options.lockWaitMs, `${where}: options.lockWaitMs`);
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  /** Wraps `fn` so that its results are cached on disk. The result is always a Promise. */
  cache<A extends unknown[], R>(fn: (...args: A) => R, options: CacheOptions<A> = {}): CachedFunction<A, R> {
    if (typeof fn !== 'function') {
      throw new MemoryError(
        'ERR_MEMORY_OPTION',
        `memory.cache(fn): fn must be a function; got ${fn === null ? 'null' : typeof fn}`,
      );
    }
    checkObject(options, 'memory.cache(fn, options): options');
    checkKnownOptions(options, {
      where: 'memory.cache(fn, options)',
      known: CACHE_OPTION_NAMES,
      error: (message) => optionError(message),
    });
    // Wrapping a cached function again caches the original under this Memory, not the wrapper.
    const inner = (fn as { func?: unknown }).func;
    if (typeof inner === 'function' && (fn as { memory?: unknown }).memory instanceof Memory) {
      return this.cache(inner as (...args: A) => R, options);
    }
    return makeCached(this, fn, options);
  }

  /** Removes every cached entry of this Memory (everything under its folder, or its store's prefix). */
  async clear(): Promise<void> {
    if (this.store === null) return;
    await this.store.removeAll('');
  }

  /**
   * Evicts entries, least recently used first (by access time, which every cache hit sets), until all the
   * given limits hold. Never automatic unless `bytesLimit` was given to the constructor.
   */
  async reduceSize(options: ReduceSizeOptions = {}): Promise<ReduceSizeResult> {
    const limits = checkReduceSizeOptions(options);
    if (this.store === null)
      return { removedItems: 0, removedBytes: 0, remainingItems: 0, remainingBytes: 0 };
    return reduceSize(this.store, limits);
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
