/**
 * The one interface between `Parallel` and where tasks run. The dispatcher hands a backend batches of
 * tasks and gets back their results or the first error; it knows nothing of threads, processes or Redis.
 */
import type { AnyFunction } from '../delayed.ts';
import type { EventHub } from '../events.ts';
import type { LocatedFunction } from '../locate/index.ts';
import type { RecyclingOptions } from './recycling.ts';

/** Consecutive tasks of one run, sent to one worker together. */
export interface BackendBatch {
  readonly runId: number;
  /** Input index of the first task; task `i` of the batch is input task `firstIndex + i`. */
  readonly firstIndex: number;
  readonly fns: readonly AnyFunction[];
  /** Where each function lives, for backends whose workers import it (undefined for in-process backends). */
  readonly locations: readonly (LocatedFunction | undefined)[];
  readonly args: readonly (readonly unknown[])[];
  /** Fail the batch with a `TimeoutError` when one of its tasks runs longer than this. */
  readonly timeoutMs?: number;
  /** Every task of the batch calls the same function (backends may then skip looking at each). */
  readonly uniform?: true;
  /**
   * Set when arguments hold functions or instances of classes that travel: they are encoded as tags
   * (`wire/tagged.ts`), and `deps` are the definitions the tags name. Only for backends with `byValue`.
   */
  readonly encoded?: true;
  readonly deps?: readonly LocatedFunction[];
  /** The run's seed: each task's `taskContext().seed` comes from it and the task's index. */
  readonly seed?: number;
  /**
   * Which try of these tasks this is: absent (1) on a first run; a retry (issue 15's `retries`) is a
   * batch of its one task with the attempt recovery gives it (2 for the first retry). It is
   * `taskContext().attempt` in the task and the `attempt` of its `task-done` event.
   */
  readonly attempt?: number;
  /** The call's initializer: each worker runs it once (per `key`) before its first task. */
  readonly init?: BatchInitializer;
  /**
   * Run every task of the batch even when one fails, and report each failure in `failures` (settled
   * mode, retries): a failure is then one task's, not the batch's. Backends without it may stop at
   * the first failure (`ok: false`); the dispatcher then runs the rest again.
   */
  readonly keepGoing?: true;
  /** A retry after a crash or a timeout: run it on a new worker where the backend can start one. */
  readonly freshWorker?: true;
}

/** `initializer: delayed(setup)(...args)` as a batch carries it. */
export interface BatchInitializer {
  /** One per call configuration (a `Parallel`): a worker runs each key's initializer once. */
  readonly key: string;
  readonly fn: AnyFunction;
  /** Where `fn` lives, for backends whose workers import it (undefined for in-process backends). */
  readonly location: LocatedFunction | undefined;
  readonly args: readonly unknown[];
}

/** Task `at` of a batch failed with `error` (already rebuilt on this side). */
export interface TaskFailure {
  readonly at: number;
  readonly error: unknown;
}

export type BatchOutcome =
  /**
   * `results` of the first `results.length` tasks (fewer than the batch's when a worker stopped early
   * to be replaced: the dispatcher sends the rest again). With `keepGoing`, `failures` lists the
   * tasks that failed (their `results` entries are empty).
   */
  | { readonly ok: true; readonly results: unknown[]; readonly failures?: readonly TaskFailure[] }
  /**
   * Task `failedAt` of the batch threw, timed out or crashed its worker with `error` (already rebuilt
   * on this side); the ones before it completed, and those after it never started. `results` (and
   * `failures`), when given, are those of the tasks before it.
   */
  | {
      readonly ok: false;
      readonly failedAt: number;
      readonly error: unknown;
      readonly results?: unknown[];
      readonly failures?: readonly TaskFailure[];
    }
  /** The run was cancelled; the first `completed` tasks ran, the rest were never started. */
  | { readonly ok: 'cancelled'; readonly completed: number };

export interface ParallelBackend {
  /** Shown in verbose output: `Using backend ThreadsBackend with 8 concurrent workers.` */
  readonly name: string;
  /** How many batches run at once. */
  readonly concurrency: number;
  /** True when tasks run in the caller's thread: functions are then not located and arguments not copied. */
  readonly inProcess: boolean;
  /**
   * True when its workers take functions sent by value (closures, inline arrows, functions of the entry
   * file) and encoded arguments. Without it, only functions a worker can import are accepted.
   */
  readonly byValue?: boolean;
  /** Where `byValue` is off for a reason the user can change: what to do, added to the refusal. */
  readonly byValueHint?: string | undefined;
  /**
   * Runs a batch. Rejects only when the batch could not run at all (an argument that cannot be sent,
   * a worker that died); a task's own error resolves as `{ ok: false }`.
   */
  runBatch(batch: BackendBatch): Promise<BatchOutcome>;
  /**
   * Awaited before each run reads `concurrency` (a remote backend connects and counts its live
   * workers here). Rejecting fails the run before anything is dispatched.
   */
  prepare?(): Promise<void>;
  /** Called before the first batch of a run and after its last outcome (to hold and release workers). */
  startRun?(runId: number): void;
  endRun?(runId: number): void;
  /** Stops the run's tasks that have not started yet, as soon as the workers can see it. */
  cancelRun(runId: number): void;
  /**
   * Stops the run at once, running tasks included (terminating the workers that hold them). Backends
   * without it fall back to `cancelRun`.
   */
  abortRun?(runId: number): void;
  /** Releases the workers. The backend may be used again afterwards: it then starts new ones. */
  close(): Promise<void>;
  /** Where it emits worker events (started, exited, crashed, recycled) and its tasks' logs and reports. */
  readonly events?: EventHub;
}

export interface BackendConfig {
  /** Number of workers asked for, already resolved (`-1` has become the CPU count). */
  readonly nJobs: number;
  /** Heap limit per worker, in MB (threads: `resourceLimits`; processes: `--max-old-space-size`). */
  readonly maxWorkerMemoryMb?: number;
  /**
   * Typed-array arguments of at least this many bytes may be sent once per run rather than per task
   * (`maxNbytes`, resolved to bytes); null: the user turned that off.
   */
  readonly maxNbytes: number | null;
  /** When healthy workers are replaced (`maxTasksPerWorker`, `idleTimeoutMs`, `maxWorkerRssMb`). */
  readonly recycling?: RecyclingOptions;
  /** Backend-specific options, as given in `backendOptions`. */
  readonly options?: Readonly<Record<string, unknown>>;
}

export type ParallelBackendFactory = (config: BackendConfig) => ParallelBackend;
