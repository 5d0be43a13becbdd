/**
 * `new Parallel(options).run(tasks)`: joblib's `Parallel(n_jobs=...)(delayed(f)(x) for x in ...)`.
 */
import { backendFactory, type ParallelBackend, registeredBackendNames } from './backends/backend.ts';
import { ProcessesBackend } from './backends/processes.ts';
import { SequentialBackend } from './backends/sequential.ts';
import { ThreadsBackend } from './backends/threads.ts';
import { effectiveNJobs } from './cpu.ts';
import type { Task, TaskResult } from './delayed.ts';
import { AutoBatchSize, type BatchSizer, FixedBatchSize } from './dispatch/batch-size.ts';
import { runTasks } from './dispatch/dispatcher.ts';
import { evaluatePreDispatch } from './dispatch/expression.ts';
import { invalidArgument } from './errors.ts';
import { assertNotImportingTaskModule } from './main-guard.ts';
import { VerboseReporter } from './progress/verbose.ts';

export type BuiltinBackendName = 'threads' | 'processes' | 'sequential';

export interface ParallelOptions {
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
  /** joblib's progress messages: 0 none; 1..10 more and more often; above 10 every batch; 50+ to stdout. */
  verbose?: number;
  /** Tasks per message to a worker: `'auto'` (the default) adapts it to task duration, as joblib does. */
  batchSize?: 'auto' | number;
  /** Batches in flight ahead of the results: a number, `'all'`, or an expression of `nJobs` (default `'2*nJobs'`). */
  preDispatch?: number | string;
}

/** The results of `run(tasks)`: a tuple stays a tuple, an array of tasks gives an array of results. */
export type RunResults<T extends readonly Task[]> = { -readonly [K in keyof T]: TaskResult<T[K]> };

let nextRunId = 1;

export class Parallel {
  readonly nJobs: number;
  readonly backendName: string;
  readonly verbose: number;
  readonly batchSize: 'auto' | number;
  readonly preDispatch: number | string;
  private backend: ParallelBackend | undefined;
  private readonly workers: number;

  constructor(options: ParallelOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw invalidArgument('new Parallel(options): options', 'an object such as { nJobs: 4 }', options);
    }
    const {
      nJobs = 1,
      backend = 'threads',
      verbose = 0,
      batchSize = 'auto',
      preDispatch = '2*nJobs',
    } = options;
    this.workers = effectiveNJobs(nJobs);
    if (typeof backend !== 'string' || !isKnownBackend(backend)) {
      const known = ['threads', 'processes', 'sequential', ...registeredBackendNames()].map((n) => `'${n}'`);
      throw invalidArgument('backend', `one of ${known.join(', ')}`, backend);
    }
    if (typeof verbose !== 'number' || !Number.isFinite(verbose) || verbose < 0) {
      throw invalidArgument('verbose', 'a number >= 0 (0 silent, 10 every batch, 50+ to stdout)', verbose);
    }
    if (
      batchSize !== 'auto' &&
      (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize < 1)
    ) {
      throw invalidArgument('batchSize', "'auto' or a positive integer", batchSize);
    }
    evaluatePreDispatch(preDispatch, this.workers);
    this.nJobs = nJobs;
    this.backendName = backend;
    this.verbose = verbose;
    this.batchSize = batchSize;
    this.preDispatch = preDispatch;
  }

  /**
   * Runs the tasks and resolves to their results in input order. `tasks` may be any Iterable or
   * AsyncIterable (read lazily, a window of batches at a time). The first task that throws rejects
   * with that error (same class, message, stack and `cause`, plus `taskIndex` and `functionName`);
   * tasks not started by then never start.
   */
  run<const T extends readonly Task[]>(tasks: T): Promise<RunResults<T>>;
  run<R>(tasks: Iterable<Task<R>> | AsyncIterable<Task<R>>): Promise<R[]>;
  async run(tasks: Iterable<Task> | AsyncIterable<Task>): Promise<unknown[]> {
    assertNotImportingTaskModule();
    const backend = this.acquireBackend();
    const preDispatch = evaluatePreDispatch(this.preDispatch, backend.concurrency);
    const reporter = new VerboseReporter(this.verbose, `Parallel(nJobs=${this.nJobs})`, preDispatch);
    const sizer: BatchSizer =
      this.batchSize === 'auto'
        ? new AutoBatchSize((tooFast, seconds, size) => reporter.batchSizeChanged(tooFast, seconds, size))
        : new FixedBatchSize(this.batchSize);
    reporter.start(backend.name, backend.concurrency);
    return runTasks({
      backend,
      runId: nextRunId++,
      tasks,
      sizer,
      preDispatch,
      observer: {
        progress: (counters) => reporter.progress(counters),
        finish: (outcome, counters) => {
          if (outcome === 'done') reporter.finished(counters);
        },
      },
    });
  }

  /** Shuts the workers down. The instance stays usable: a later `run()` starts new workers. */
  async close(): Promise<void> {
    const backend = this.backend;
    this.backend = undefined;
    await backend?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private acquireBackend(): ParallelBackend {
    if (this.backend) return this.backend;
    const name = this.backendName;
    let backend: ParallelBackend;
    if (name === 'sequential' || ((name === 'threads' || name === 'processes') && this.workers === 1)) {
      // As joblib: one job runs in the caller, with no worker to start or data to copy.
      backend = new SequentialBackend();
    } else if (name === 'threads') {
      backend = new ThreadsBackend(this.workers);
    } else if (name === 'processes') {
      backend = new ProcessesBackend(this.workers);
    } else {
      const factory = backendFactory(name);
      if (!factory) throw invalidArgument('backend', 'a registered backend name', name);
      backend = factory({ nJobs: this.workers });
    }
    this.backend = backend;
    return backend;
  }
}

function isKnownBackend(name: string): boolean {
  return (
    name === 'threads' || name === 'processes' || name === 'sequential' || backendFactory(name) !== undefined
  );
}
