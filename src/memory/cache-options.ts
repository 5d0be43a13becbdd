/** The options of `memory.cache(fn, options)`, checked once when the function is wrapped. */

import type { AnyFunction } from '../delayed.ts';
import { buildKeyPlan, type KeyPlan } from './call-key.ts';
import { checkNonNegative, checkVerbose, optionError } from './checks.ts';
import type { EntryMetadata, EntryPolicy } from './entry-metadata.ts';

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
  /**
   * `true` (default): the code version covers the functions, classes and constants of your code that the
   * function reaches, and the versions of the packages it uses. `false`: its own source text only.
   */
  deepKey?: boolean;
}

/** Every `CacheOptions` name, checked complete by the compiler: others are refused. */
const CACHE_OPTION_KEYS: Record<keyof CacheOptions, true> = {
  ignore: true,
  verbose: true,
  cacheValidationCallback: true,
  expiresAfterMs: true,
  name: true,
  version: true,
  key: true,
  onStoreError: true,
  deepKey: true,
};
export const CACHE_OPTION_NAMES: readonly string[] = Object.keys(CACHE_OPTION_KEYS);

/** `CacheOptions` after checking, with the Memory's defaults filled in. */
export interface ResolvedCacheOptions<A extends unknown[]> {
  readonly plan: KeyPlan;
  readonly verbose: number;
  readonly policy: EntryPolicy;
  readonly keyFn: ((...args: A) => unknown) | undefined;
  readonly onStoreError: 'throw' | 'warn';
  readonly deepKey: boolean;
}

/** `name` and `version` shape the function's identity, so they are checked before anything else. */
export function checkNaming(options: { name?: unknown; version?: unknown }, label: string): void {
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0)) {
    throw optionError(`cache(${label}, options): options.name must be a non-empty string`);
  }
  if (options.version !== undefined && typeof options.version !== 'string') {
    throw optionError(`cache(${label}, options): options.version must be a string`);
  }
}

/** Checks the remaining options in the order they are documented; `memoryVerbose` is the default level. */
export function resolveCacheOptions<A extends unknown[]>(
  fn: AnyFunction,
  options: CacheOptions<A>,
  label: string,
  memoryVerbose: number,
): ResolvedCacheOptions<A> {
  const where = `cache(${label}, options)`;
  const plan = buildKeyPlan(fn, options.ignore, label);
  const verbose = checkVerbose(options.verbose, `${where}: options.verbose`) ?? memoryVerbose;
  const expiresAfterMs =
    options.expiresAfterMs === undefined
      ? undefined
      : checkNonNegative(options.expiresAfterMs, `${where}: options.expiresAfterMs`, false);
  const validate = options.cacheValidationCallback;
  if (validate !== undefined && typeof validate !== 'function') {
    throw optionError(`${where}: options.cacheValidationCallback must be a function (metadata) => boolean`);
  }
  const keyFn = options.key;
  if (keyFn !== undefined && typeof keyFn !== 'function') {
    throw optionError(`${where}: options.key must be a function`);
  }
  const onStoreError = options.onStoreError ?? 'throw';
  if (onStoreError !== 'throw' && onStoreError !== 'warn') {
    throw optionError(
      `${where}: options.onStoreError must be 'throw' or 'warn'; got ${JSON.stringify(onStoreError)}`,
    );
  }
  const deepKey = options.deepKey ?? true;
  if (typeof deepKey !== 'boolean') {
    throw optionError(`${where}: options.deepKey must be true or false; got ${JSON.stringify(deepKey)}`);
  }
  return { plan, verbose, policy: { expiresAfterMs, validate }, keyFn, onStoreError, deepKey };
}
