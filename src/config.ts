/**
 * `parallelConfig(config, fn)`: defaults for every `Parallel` created while `fn` runs (and in what it
 * awaits), like joblib's `parallel_config` context manager. A library calls `new Parallel()` and its
 * user picks the backend and the number of jobs around the call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { InvalidArgumentError } from './errors.ts';
import { checkKnownOptions } from './known-options.ts';
import { PARALLEL_OPTION_NAMES, type ParallelOptions } from './options.ts';

/**
 * What can be set for a scope: every `Parallel` option except the per-instance `signal`, and
 * `returnAs` and `errorMode` (which decide the type `run()` returns, so they must be visible where
 * `Parallel` is made).
 */
export type ParallelConfig = Omit<ParallelOptions, 'signal' | 'returnAs' | 'errorMode'>;

const CONFIG_OPTION_NAMES = PARALLEL_OPTION_NAMES.filter(
  (name) => name !== 'signal' && name !== 'returnAs' && name !== 'errorMode',
);

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
  checkKnownOptions(config, {
    where: 'parallelConfig(config, fn)',
    known: CONFIG_OPTION_NAMES,
    elsewhere: {
      signal:
        'signal belongs to one Parallel or one run(): new Parallel({ signal }) or run(tasks, { signal })',
      returnAs:
        'returnAs decides the type run() returns, so it is given where the Parallel is made: new Parallel({ returnAs })',
      errorMode:
        "errorMode decides the type run() returns, so it is given where the Parallel is made or run: new Parallel({ errorMode: 'settled' }) or run(tasks, { errorMode })",
    },
    error: (message) => new InvalidArgumentError(message),
  });
  const merged: ParallelConfig = { ...currentParallelConfig() };
  for (const [key, value] of Object.entries(config)) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  return storage.run(merged, fn);
}
