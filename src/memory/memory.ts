/** `Memory`: the disk cache object users create, and the options it takes. */

import { checkKnownOptions } from '../known-options.ts';
import { type Compress, PersistError, type ResolvedCompress, resolveCompress } from '../persist.ts';
import { CACHE_OPTION_NAMES, type CacheOptions } from './cache-options.ts';
import { type CachedFunctionCalls, makeCached } from './cached-function.ts';
import { checkBytes, checkObject, checkVerbose, optionError } from './checks.ts';
import { MemoryError } from './errors.ts';
import type { CacheHost } from './function-cache.ts';
import { checkLocation, resolveLocation } from './location.ts';
import {
  checkReduceSizeOptions,
  type ReduceSizeOptions,
  type ReduceSizeResult,
  reduceSize,
} from './reduce-size.ts';
import { clearLocation } from './store.ts';

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

const MEMORY_OPTION_KEYS: Record<keyof MemoryOptions, true> = {
  verbose: true,
  bytesLimit: true,
  compress: true,
  log: true,
};
const MEMORY_OPTION_NAMES: readonly string[] = Object.keys(MEMORY_OPTION_KEYS);

/** A function wrapped by `memory.cache()`. */
export interface CachedFunction<A extends unknown[], R> extends CachedFunctionCalls<A, R> {
  readonly memory: Memory;
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
export class Memory implements CacheHost {
  /** Absolute cache directory, or null when caching is off. */
  readonly location: string | null;
  readonly verbose: number;
  readonly bytesLimit: number | undefined;
  readonly compress: ResolvedCompress;
  private readonly log: (line: string) => void;
  private bytesSinceSweep = 0;
  private swept = false;

  constructor(location: string | URL | null, options: MemoryOptions = {}) {
    const where = 'new Memory(location, options)';
    checkObject(options, `${where}: options`);
    checkKnownOptions(options, {
      where,
      known: MEMORY_OPTION_NAMES,
      elsewhere: {
        location: 'the location is the first argument: new Memory(location, options)',
        backend: 'joblib-ts stores entries on the local disk only; there is no storage backend to choose',
      },
      error: (message) => optionError(message),
    });
    this.location = resolveLocation(location);
    if (this.location !== null) checkLocation(this.location);
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
    const limits = checkReduceSizeOptions(options);
    if (this.location === null)
      return { removedItems: 0, removedBytes: 0, remainingItems: 0, remainingBytes: 0 };
    return reduceSize(this.location, limits);
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
