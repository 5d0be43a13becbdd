/**
 * `memory.cache(fn)`'s result: a function with the same arguments that returns a Promise, plus the
 * methods of joblib's `MemorizedFunc`. With caching off (`new Memory(null)`) every method calls `fn`.
 */

import type { AnyFunction } from '../delayed.ts';
import { type CacheOptions, checkNaming, resolveCacheOptions } from './cache-options.ts';
import type { EntryMetadata } from './entry-metadata.ts';
import type { Explanation } from './explain.ts';
import { type CacheHost, type CallOutcome, FunctionCache } from './function-cache.ts';
import { functionIdentity } from './identity.ts';
import { NotCachedResult, type ShelvedResult } from './shelved.ts';

/** A cached function without its `memory` back-reference (`CachedFunction` adds it). */
export interface CachedFunctionCalls<A extends unknown[], R> {
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
  /**
   * Why a call with these arguments would hit or miss: never computed with them (with the nearest entry
   * by arguments), the code changed (which function, where), a dependency's version changed, the entry
   * expired, `cacheValidationCallback` rejected it, or it is damaged. Looks only: changes nothing.
   */
  explain(...args: A): Promise<Explanation>;
  /** The wrapped function. */
  readonly func: (...args: A) => R;
  /** The function's cache identity. */
  readonly funcId: string;
}

/** The behaviour behind each member of the wrapper, with or without a cache folder. */
interface CallTable<A extends unknown[], R> {
  run(args: A): Promise<Awaited<R>>;
  callAndShelve(...args: A): Promise<ShelvedResult<Awaited<R>>>;
  checkCallInCache(...args: A): Promise<boolean>;
  call(...args: A): Promise<CallOutcome<R>>;
  clear(): Promise<void>;
  explain(...args: A): Promise<Explanation>;
}

/** Checks the options and wraps `fn`; the wrapper's `memory` is `host`. */
export function makeCached<A extends unknown[], R, H extends CacheHost>(
  host: H,
  fn: (...args: A) => R,
  options: CacheOptions<A>,
): CachedFunctionCalls<A, R> & { readonly memory: H } {
  const identity = functionIdentity(fn as AnyFunction, { name: options.name, version: options.version });
  checkNaming(options, identity.displayName);
  const settings = resolveCacheOptions(fn as AnyFunction, options, identity.displayName, host.verbose);
  const table =
    host.store === null
      ? uncachedCalls(fn)
      : cachedCalls(new FunctionCache(host, host.store, fn, identity, settings));
  const { run, ...methods } = table;
  const cached = async (...args: A): Promise<Awaited<R>> => run(args);
  Object.assign(cached, methods);
  Object.defineProperties(cached, {
    name: { value: fn.name, configurable: true },
    func: { value: fn, enumerable: true },
    funcId: { value: identity.id, enumerable: true },
    memory: { value: host, enumerable: true },
  });
  return cached as CachedFunctionCalls<A, R> & { readonly memory: H };
}

function cachedCalls<A extends unknown[], R>(cache: FunctionCache<A, R>): CallTable<A, R> {
  return {
    run: async (args): Promise<Awaited<R>> => (await cache.getOrCompute(args, false)).value,
    callAndShelve: (...args) => cache.shelve(args),
    checkCallInCache: (...args) => cache.has(args),
    call: (...args) => cache.getOrCompute(args, true),
    clear: () => cache.clear(),
    explain: (...args) => cache.explain(args),
  };
}

function uncachedCalls<A extends unknown[], R>(fn: (...args: A) => R): CallTable<A, R> {
  const run = async (args: A): Promise<Awaited<R>> => (await fn(...args)) as Awaited<R>;
  return {
    run,
    callAndShelve: async (...args) => new NotCachedResult(await run(args)),
    checkCallInCache: async () => false,
    call: async (...args) => ({ value: await run(args), metadata: undefined }),
    clear: async () => {},
    explain: async () => ({
      hit: false,
      reason: 'new-arguments',
      message: 'caching is off (new Memory(null)): every call computes',
      entry: '',
    }),
  };
}
