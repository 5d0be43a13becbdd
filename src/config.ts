/**
 * `parallelConfig(config, fn)`: defaults for every `Parallel` created while `fn` runs (and in what it
 * awaits), like joblib's `parallel_config` context manager. A library calls `new Parallel()` and its
 * user picks the backend and the number of jobs around the call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ParallelOptions } from './options.ts';

/**
 * What can be set for a scope: every `Parallel` option except the per-instance `signal` and
 * `returnAs` (which decides the type `run()` returns, so it must be visible where `Parallel` is made).
 */
export type ParallelConfig = Omit<ParallelOptions, 'signal' | 'returnAs'>;

const storage = new AsyncLocalStorage<ParallelConfig>();

/** The defaults in force here (innermost scope wins, key by key). */
export function currentParallelConfig(): ParallelConfig {
  return storage.getStore() ?? {};
}

/**
 * Runs `fn` with `config` as the defaults of every `Parallel` created inside it. Options given to
 * `new Parallel(...)` explicitly still win. Scopes nest; the inner one overrides key by key.
 */
export function parallelConfig<T>(config: ParallelConfig, fn: () => T): T {
  if (config === null || typeof config !== 'object') {
    throw new TypeError(
      `parallelConfig(config, fn): config must be an object such as { backend: 'processes' }.`,
    );
  }
  if (typeof fn !== 'function') throw new TypeError('parallelConfig(config, fn): fn must be a function.');
  const merged: ParallelConfig = { ...currentParallelConfig() };
  for (const [key, value] of Object.entries(config)) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  return storage.run(merged, fn);
}
