import type { Retries } from './dispatch/retry.ts';
import type { ErrorMode } from './dispatch/settled.ts';

/**
 * What `new Parallel(options)` and `run(tasks, options)` accept. A module of its own so that
 * `parallelConfig` (config.ts) and `Parallel` (parallel.ts) both read it without importing each other.
 */

import type { Task } from './delayed.ts';
import type { JoblibEvent } from './events.ts';

export type BuiltinBackendName = 'threads' | 'processes' | 'sequential' | 'redis';

/**
 * What `run()` returns: `'array'` a Promise of all results in input order; `'generator'` an async
 * generator of results in input order as they become available; `'unordered'` an async generator of
 * `{ index, value }` as tasks complete.
 */
export type ReturnAs = 'array' | 'generator' | 'unordered';

export interface ParallelOptions<M extends ReturnAs = ReturnAs, E extends ErrorMode = 'fail-fast'> {
  /** `'array'` (default), `'generator'` (ordered stream) or `'unordered'` (stream in completion order). */
  returnAs?: M;
  /**
   * `'fail-fast'` (the default, joblib's): the first failed task fails the run. `'settled'`: every task
   * gives an entry shaped as `Promise.allSettled`'s (`{ status: 'fulfilled', value }` or
   * `{ status: 'rejected', reason }`), in input order; a throw, a timeout, a worker crash and a result
   * that cannot be sent back each land in their task's own entry. Per run too: `run(tasks, { errorMode })`.
   */
  errorMode?: E;
  /**
   * A failed task runs again, up to `count` times (on another worker after a crash or a timeout):
   * a number, or `{ count, delayMs, backoff, retryOn(error, attempt) }`. The last attempt's error
   * carries `attempts`. Works in both error modes, on every backend.
   */
  retries?: Retries;
  /**
   * A worker is replaced after this many tasks (between batches; batches are never larger), against
   * tasks that leak (Python multiprocessing's `maxtasksperchild`). Threads and processes.
   */
  maxTasksPerWorker?: number;
  /** An idle worker exits after this many ms without a task, freeing its memory (default 300,000, as loky's). */
  idleTimeoutMs?: number;
  /**
   * Processes: a worker whose resident memory passes this many MB is replaced between two tasks,
   * gracefully (no task fails; the rest of its batch runs on another worker).
   */
  maxWorkerRssMb?: number;
  /**
   * Number of workers: `1` (the default, as in joblib) runs tasks in this thread; `-1` uses every
   * CPU (`cpuCount()`), `-2` all but one, and so on.
   */
  nJobs?: number;
  /**
   * Where tasks run: `'threads'` (worker_threads, the default), `'processes'` (child processes), `'sequential'`
   * (this thread), or a name registered with `registerParallelBackend`.
   */
  backend?: BuiltinBackendName | (string & {});
  /** Options for the backend (for a registered backend such as `'redis'`: its connection, queue...). */
  backendOptions?: Readonly<Record<string, unknown>>;
  /** joblib's progress messages: 0 none; 1..10 more and more often; above 10 every batch; 50+ to stdout. */
  verbose?: number;
  /**
   * A progress bar on stderr: on a terminal a live bar (done/total, rate, elapsed, ETA, at most 10
   * redraws a second, cleared at the end); elsewhere plain lines every 10% or so. `true`, or
   * `{ label, stream }`. On a terminal it replaces the verbose progress lines.
   */
  progress?: boolean | { label?: string; stream?: NodeJS.WritableStream };
  /** Tasks per message to a worker: `'auto'` (the default) adapts it to task duration, as joblib does. */
  batchSize?: 'auto' | number;
  /** Batches in flight ahead of the results: a number, `'all'`, or an expression of `nJobs` (default `'2*nJobs'`). */
  preDispatch?: number | string;
  /** Aborting it rejects any `run()` in progress with the signal's reason and stops its workers' tasks. */
  signal?: AbortSignal;
  /**
   * A task running longer than this (ms) fails the run with a `TimeoutError`; its worker is terminated
   * and replaced. Enforced by the worker backends: with `nJobs: 1` tasks run in this thread and
   * cannot be interrupted.
   */
  timeoutMs?: number;
  /** Heap limit of each worker, in MB; a task that needs more ends with a `WorkerCrashedError`. */
  maxWorkerMemoryMb?: number;
  /**
   * Threads: a typed-array argument of at least this size (bytes, or `'1M'`, `'512K'`, `'2G'`) is
   * copied once per run into shared memory, and every task that receives it reads that one copy
   * instead of getting a copy per task (joblib's auto-memmapping, default `'1M'`). `null` turns it off.
   * Arrays already on a SharedArrayBuffer are always shared as they are. Processes: such an array is
   * written once per run to a file in `/dev/shm` and read once per worker process, not piped per task.
   * Either way tasks may read it and must not write it.
   */
  maxNbytes?: number | string | null;
  /**
   * Inside a worker, `Parallel` runs sequentially by default (as joblib limits nested parallelism, to
   * avoid oversubscribing the CPUs); `nested: true` lets a task start its own workers.
   */
  nested?: boolean;
  /**
   * The run's seed, an integer in [0, 2^32): each task's `taskContext().seed` and `random()` derive from
   * it and the task's index only, so results do not depend on the backend, `nJobs` or the batch size.
   * Without it each run draws one, given in the `run-start` event, at `verbose >= 10`, and as `lastSeed`.
   */
  seed?: number;
  /**
   * `delayed(setup)(...args)`: each worker runs it once, before its first task of this `Parallel`; what
   * it returns (or resolves to) is `workerContext()` in the tasks. If it throws, the run fails with its error.
   */
  initializer?: Task;
  /**
   * What workers write (`console.log`...): `'inherit'` (default) prints it in the caller as written,
   * `'tagged'` prefixes each line with its task's index (`[task 12] ...`), `'silent'` drops it. Either way
   * a line comes before its task's result, above a live progress bar, and as an `onEvent` `log` event.
   */
  logs?: LogsMode;
  /** Receives every event of each run: start, each task done or failed, workers, logs, reports, end. */
  onEvent?: (event: JoblibEvent) => void;
}

/** How workers' console output reaches the caller (the `logs` option). */
export type LogsMode = 'inherit' | 'tagged' | 'silent';

/** Options of one `run()` call. */
export interface RunOptions<E extends ErrorMode = ErrorMode> {
  /** Aborting it rejects this run with the signal's reason and stops its running tasks. */
  signal?: AbortSignal;
  /** This run's seed, instead of the `Parallel`'s (to replay a run whose seed was drawn). */
  seed?: number;
  /** This run's `errorMode`, instead of the `Parallel`'s. */
  errorMode?: E;
  /** This run's `retries`, instead of the `Parallel`'s. */
  retries?: Retries;
}

/** Every `ParallelOptions` name, checked complete by the compiler (unknown names are refused at run time). */
const PARALLEL_OPTION_KEYS: Record<keyof ParallelOptions, true> = {
  returnAs: true,
  nJobs: true,
  backend: true,
  backendOptions: true,
  verbose: true,
  progress: true,
  batchSize: true,
  preDispatch: true,
  signal: true,
  timeoutMs: true,
  maxWorkerMemoryMb: true,
  maxNbytes: true,
  nested: true,
  seed: true,
  initializer: true,
  logs: true,
  onEvent: true,
  errorMode: true,
  retries: true,
  maxTasksPerWorker: true,
  idleTimeoutMs: true,
  maxWorkerRssMb: true,
};
export const PARALLEL_OPTION_NAMES: readonly string[] = Object.keys(PARALLEL_OPTION_KEYS);

const RUN_OPTION_KEYS: Record<keyof RunOptions, true> = {
  signal: true,
  seed: true,
  errorMode: true,
  retries: true,
};
export const RUN_OPTION_NAMES: readonly string[] = Object.keys(RUN_OPTION_KEYS);
