/**
 * `new Parallel(options).run(tasks)`: joblib's `Parallel(n_jobs=...)(delayed(f)(x) for x in ...)`.
 */
import type { ParallelBackend } from './backends/backend.ts';
import { checkRecycling, type RecyclingOptions, recycledLine } from './backends/recycling.ts';
import { backendFactory, isRegisteredBackend, registeredBackendNames } from './backends/registry.ts';
import { parseBytes } from './bytes.ts';
import { currentParallelConfig } from './config.ts';
import { drawRunSeed, isSeed } from './context/prng.ts';
import { effectiveNJobs } from './cpu.ts';
import { isTask, type Task, type TaskResult } from './delayed.ts';
import { AutoBatchSize, type BatchSizer, FixedBatchSize } from './dispatch/batch-size.ts';
import { runTasks } from './dispatch/dispatcher.ts';
import { evaluatePreDispatch } from './dispatch/expression.ts';
import { type RetryPolicy, retryPolicy } from './dispatch/retry.ts';
import {
  ERROR_MODES,
  type ErrorMode,
  type IndexedSettledResult,
  type SettledResult,
} from './dispatch/settled.ts';
import { type IndexedResult, streamResults } from './dispatch/stream.ts';
import { describeValue, InvalidArgumentError, invalidArgument } from './errors.ts';
import type { EventListener, JoblibEvent } from './events.ts';
import { checkKnownOptions } from './known-options.ts';
import { assertNotImportingTaskModule, isJoblibWorker } from './main-guard.ts';
import {
  type LogsMode,
  PARALLEL_OPTION_NAMES,
  type ParallelOptions,
  type ReturnAs,
  RUN_OPTION_NAMES,
  type RunOptions,
} from './options.ts';
import { createProgressReporter } from './progress/bar.ts';
import { createLogPrinter } from './progress/logs.ts';
import { progressFromEvents } from './progress/run-progress.ts';
import { shortFormatTime, VerboseReporter } from './progress/verbose.ts';

/** The results of `run(tasks)`: a tuple stays a tuple, an array of tasks gives an array of results. */
export type RunResults<T extends readonly Task[]> = { -readonly [K in keyof T]: TaskResult<T[K]> };

/** The entries of `run(tasks)` in settled mode: one `SettledResult` per task, a tuple staying a tuple. */
export type SettledResults<T extends readonly Task[]> = {
  -readonly [K in keyof T]: SettledResult<TaskResult<T[K]>>;
};

/**
 * What `run()` returns in each `returnAs` mode, for all results `A` and one result `R` (fail-fast), or
 * all entries `S` (settled mode, `E = 'settled'`).
 */
export type RunReturn<
  M extends ReturnAs,
  A,
  R,
  E extends ErrorMode = 'fail-fast',
  S = SettledResult<R>[],
> = E extends 'settled'
  ? M extends 'generator'
    ? AsyncGenerator<SettledResult<R>, void, undefined>
    : M extends 'unordered'
      ? AsyncGenerator<IndexedSettledResult<R>, void, undefined>
      : Promise<S>
  : M extends 'generator'
    ? AsyncGenerator<R, void, undefined>
    : M extends 'unordered'
      ? AsyncGenerator<IndexedResult<R>, void, undefined>
      : Promise<A>;

let nextRunId = 1;
/** Names each `Parallel` (a call configuration) for workers' initializer results: unique per program. */
const INSTANCE_NONCE = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let nextInstance = 1;

function checkSeed(name: string, seed: unknown): void {
  if (seed !== undefined && !isSeed(seed))
    throw invalidArgument(name, 'an integer from 0 to 4294967295', seed);
}

/** Explicit options win over the enclosing `parallelConfig` scope, which wins over the defaults. */
function resolveOptions(options: ParallelOptions): ParallelOptions {
  const resolved: ParallelOptions = { ...currentParallelConfig() };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (resolved as Record<string, unknown>)[key] = value;
  }
  return resolved;
}

function checkPositive(name: string, value: unknown, expected: string): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) {
    throw invalidArgument(name, expected, value);
  }
}

/** `1048576`, `'1M'`, `'512K'`, `'2G'` → bytes; null stays null. */
function maxNbytesOption(value: unknown): number | null {
  if (value === null) return null;
  const bytes = parseBytes(value);
  if (bytes === undefined)
    throw invalidArgument('maxNbytes', "a number of bytes, a size such as '1M', or null", value);
  return bytes;
}

function checkSignal(name: string, signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw invalidArgument(name, 'an AbortSignal', signal);
}

export class Parallel<M extends ReturnAs = 'array', E extends ErrorMode = 'fail-fast'> {
  readonly returnAs: M;
  readonly errorMode: E;
  /** Resolved `retries` (undefined: none). */
  readonly retries: RetryPolicy | undefined;
  readonly recycling: RecyclingOptions;
  readonly nJobs: number;
  readonly backendName: string;
  readonly verbose: number;
  readonly batchSize: 'auto' | number;
  readonly preDispatch: number | string;
  readonly timeoutMs: number | undefined;
  readonly maxWorkerMemoryMb: number | undefined;
  /** Resolved `maxNbytes`: bytes, or null when sharing is off. */
  readonly maxNbytes: number | null;
  private readonly progress: ParallelOptions['progress'];
  private readonly signal: AbortSignal | undefined;
  private readonly backendOptions: Readonly<Record<string, unknown>> | undefined;
  /** True when this instance runs inside a worker without `nested: true`: it then runs sequentially. */
  private readonly sequentialBecauseNested: boolean;
  private backend: ParallelBackend | undefined;
  private readonly workers: number;
  readonly seed: number | undefined;
  readonly logs: LogsMode;
  private readonly initializer: Task | undefined;
  private readonly initializerKey = `${INSTANCE_NONCE}-${nextInstance++}`;
  private readonly onEvent: ((event: JoblibEvent) => void) | undefined;
  #lastSeed: number | undefined;

  /** The seed of the latest run started (given, or drawn): pass it as `seed` to replay that run. */
  get lastSeed(): number | undefined {
    return this.#lastSeed;
  }

  constructor(options: ParallelOptions<M, E> = {}) {
    if (options === null || typeof options !== 'object') {
      throw invalidArgument('new Parallel(options): options', 'an object such as { nJobs: 4 }', options);
    }
    checkKnownOptions(options, {
      where: 'new Parallel(options)',
      known: PARALLEL_OPTION_NAMES,
      error: (message) => new InvalidArgumentError(message),
    });
    const {
      nJobs = 1,
      backend = 'threads',
      verbose = 0,
      batchSize = 'auto',
      preDispatch = '2*nJobs',
      timeoutMs,
      maxWorkerMemoryMb,
      signal,
      backendOptions,
      nested = false,
      progress = false,
      maxNbytes = '1M',
      seed,
      initializer,
      logs = 'inherit',
      onEvent,
      retries,
      maxTasksPerWorker,
      idleTimeoutMs,
      maxWorkerRssMb,
    } = resolveOptions(options as ParallelOptions);
    const returnAs = options.returnAs ?? 'array';
    if (returnAs !== 'array' && returnAs !== 'generator' && returnAs !== 'unordered') {
      throw invalidArgument('returnAs', "'array', 'generator' or 'unordered'", returnAs);
    }
    this.returnAs = returnAs as M;
    const errorMode = options.errorMode ?? 'fail-fast';
    if (!ERROR_MODES.includes(errorMode))
      throw invalidArgument('errorMode', "'fail-fast' or 'settled'", errorMode);
    this.errorMode = errorMode as E;
    this.retries = retryPolicy(retries);
    this.workers = effectiveNJobs(nJobs);
    if (typeof backend !== 'string' || !isRegisteredBackend(backend)) {
      const known = registeredBackendNames().map((n) => `'${n}'`);
      throw invalidArgument(
        'backend',
        `one of ${known.join(', ')}, or a name given to registerParallelBackend`,
        backend,
      );
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
    checkPositive('timeoutMs', timeoutMs, 'a number of milliseconds > 0');
    checkPositive('maxWorkerMemoryMb', maxWorkerMemoryMb, 'a number of megabytes > 0');
    checkSignal('signal', signal);
    if (backendOptions !== undefined && (backendOptions === null || typeof backendOptions !== 'object')) {
      throw invalidArgument('backendOptions', 'an object', backendOptions);
    }
    this.nJobs = nJobs;
    this.backendName = backend;
    this.verbose = verbose;
    this.batchSize = batchSize;
    this.preDispatch = preDispatch;
    this.timeoutMs = timeoutMs;
    this.maxWorkerMemoryMb = maxWorkerMemoryMb;
    this.signal = signal;
    this.backendOptions = backendOptions;
    if (typeof progress !== 'boolean' && (progress === null || typeof progress !== 'object')) {
      throw invalidArgument('progress', 'true, false, or { label, stream }', progress);
    }
    this.progress = progress;
    this.maxNbytes = maxNbytesOption(maxNbytes);
    checkSeed('seed', seed);
    this.seed = seed;
    if (initializer !== undefined && !isTask(initializer))
      throw invalidArgument('initializer', 'a task made with delayed(setup)(...args)', initializer);
    this.initializer = initializer;
    if (logs !== 'inherit' && logs !== 'tagged' && logs !== 'silent')
      throw invalidArgument('logs', "'inherit', 'tagged' or 'silent'", logs);
    this.logs = logs;
    if (onEvent !== undefined && typeof onEvent !== 'function')
      throw invalidArgument('onEvent', 'a function (event) => void', onEvent);
    this.onEvent = onEvent;
    this.recycling = { maxTasksPerWorker, idleTimeoutMs, maxWorkerRssMb };
    for (const key of ['maxTasksPerWorker', 'idleTimeoutMs', 'maxWorkerRssMb'] as const)
      if (this.recycling[key] === undefined) delete (this.recycling as Record<string, unknown>)[key];
    checkRecycling(this.recycling, backend);
    this.sequentialBecauseNested = isJoblibWorker() && !nested && backend !== 'sequential';
  }

  /**
   * Runs the tasks and resolves to their results in input order. `tasks` may be any Iterable or
   * AsyncIterable (read lazily, a window of batches at a time). The first task that throws rejects
   * with that error (same class, message, stack and `cause`, plus `taskIndex` and `functionName`);
   * tasks not started by then never start.
   */
  run<const T extends readonly Task[], X extends ErrorMode = E>(
    tasks: T,
    options?: RunOptions<X>,
  ): RunReturn<M, RunResults<T>, TaskResult<T[number]>, X, SettledResults<T>>;
  run<R, X extends ErrorMode = E>(
    tasks: Iterable<Task<R>> | AsyncIterable<Task<R>>,
    options?: RunOptions<X>,
  ): RunReturn<M, R[], R, X>;
  run(
    tasks: Iterable<Task> | AsyncIterable<Task>,
    options: RunOptions = {},
  ): Promise<unknown[]> | AsyncGenerator<unknown, void, undefined> {
    if (this.returnAs === 'array') return this.start(tasks, options);
    const ordered = this.returnAs === 'generator';
    const prepared = this.prepare(tasks, options);
    // Seen by the stream's first next(); not an unhandled rejection if the stream is never read.
    prepared.catch(() => {});
    // Bad input surfaces at the stream's first next(), as with any async generator; `yield*` passes
    // an early `return()` on to the inner stream, which stops the run.
    return (async function* () {
      const spec = await prepared;
      yield* streamResults(spec, ordered, Math.max(1024, 4 * spec.preDispatch));
    })();
  }

  private async start(tasks: Iterable<Task> | AsyncIterable<Task>, options: RunOptions): Promise<unknown[]> {
    return runTasks(await this.prepare(tasks, options));
  }

  /** Checks the call and builds everything a run needs; rejects on bad input before anything starts. */
  private async prepare(
    tasks: Iterable<Task> | AsyncIterable<Task>,
    options: RunOptions,
  ): Promise<Parameters<typeof runTasks>[0]> {
    assertNotImportingTaskModule();
    if (options !== undefined && (options === null || typeof options !== 'object'))
      throw invalidArgument('run(tasks, options): options', 'an object such as { signal }', options);
    checkKnownOptions(options, {
      where: 'run(tasks, options)',
      known: RUN_OPTION_NAMES,
      elsewhere: Object.fromEntries(
        PARALLEL_OPTION_NAMES.filter((name) => !RUN_OPTION_NAMES.includes(name)).map((name) => [
          name,
          `${name} is an option of new Parallel(options) (or parallelConfig), not of one run`,
        ]),
      ),
      error: (message) => new InvalidArgumentError(message),
    });
    checkSignal('run(tasks, options): options.signal', options?.signal);
    checkSeed('run(tasks, options): options.seed', options?.seed);
    const errorMode = options?.errorMode ?? this.errorMode;
    if (!ERROR_MODES.includes(errorMode))
      throw invalidArgument('run(tasks, options): options.errorMode', "'fail-fast' or 'settled'", errorMode);
    const retry =
      options?.retries === undefined
        ? this.retries
        : retryPolicy(options.retries, 'run(tasks, options): options.retries');
    if (Array.isArray(tasks)) {
      const bad = tasks.findIndex((item) => !isTask(item));
      if (bad >= 0) {
        throw new InvalidArgumentError(
          `Parallel.run(tasks): item ${bad} is ${describeValue(tasks[bad])}, not a task. Make each item with delayed(fn)(...args).`,
        );
      }
    }
    const backend = await this.acquireBackend();
    await backend.prepare?.();
    const preDispatch = evaluatePreDispatch(this.preDispatch, backend.concurrency);
    const label = `Parallel(nJobs=${this.nJobs})`;
    const bar = this.progress
      ? createProgressReporter({ label, ...(typeof this.progress === 'object' ? this.progress : {}) })
      : undefined;
    const stream = typeof this.progress === 'object' ? this.progress.stream : process.stderr;
    // On a terminal the bar shows progress; joblib's lines would tear it, so only the first and last print.
    const barOnTerminal = bar !== undefined && (stream as NodeJS.WriteStream | undefined)?.isTTY === true;
    const reporter = new VerboseReporter(this.verbose, label, preDispatch);
    // In this thread (nJobs: 1) batches only save awaits, unseen by the user: they still grow, silently,
    // as joblib's sequential backend reports no batch size.
    const sizer: BatchSizer =
      this.batchSize === 'auto'
        ? new AutoBatchSize(
            backend.inProcess
              ? undefined
              : (tooFast, seconds, size) => reporter.batchSizeChanged(tooFast, seconds, size),
          )
        : new FixedBatchSize(this.batchSize);
    const signals = [this.signal, options?.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    reporter.start(backend.name, backend.concurrency);
    const seed = options?.seed ?? this.seed ?? drawRunSeed();
    this.#lastSeed = seed;
    if (this.verbose >= 10) reporter.print(`Run seed: ${seed} (pass seed: ${seed} to replay this run).`);
    if (this.sequentialBecauseNested) {
      reporter.print(
        'Nested inside a worker: running sequentially (pass nested: true to start workers here).',
      );
    }
    const startedAt = performance.now();
    const printLog = createLogPrinter(this.logs, barOnTerminal ? bar : undefined);
    const onEvent = this.onEvent;
    // Always a listener: a line nobody listens for would be printed raw (under 'silent' too).
    const showProgress = bar ? progressFromEvents(bar) : undefined;
    const verbose = this.verbose > 0;
    const listener: EventListener = (event) => {
      if (event.type === 'log') printLog?.(event);
      else showProgress?.(event);
      // Verbose says which limit replaced a worker.
      if (verbose && event.type === 'worker-recycled')
        reporter.print(recycledLine(event.worker, event.reason, this.recycling));
      onEvent?.(event);
    };
    const runId = nextRunId++;
    const { maxTasksPerWorker } = this.recycling;
    return {
      seed,
      ...(this.initializer ? { initializer: { key: this.initializerKey, task: this.initializer } } : {}),
      listener,
      taskEvents: onEvent !== undefined || bar !== undefined,
      backend,
      runId,
      errorMode,
      ...(retry ? { retry } : {}),
      ...(maxTasksPerWorker !== undefined && !backend.inProcess ? { maxBatchSize: maxTasksPerWorker } : {}),
      tasks,
      sizer,
      preDispatch,
      signal,
      timeoutMs: this.timeoutMs,
      observer: {
        // The bar is fed by the run's events (see the listener); verbose lines by its counters.
        progress: (counters) => {
          if (!barOnTerminal) reporter.progress(counters);
        },
        finish: (outcome, counters) => {
          if (outcome === 'done') reporter.finished(counters);
        },
        interruptedLine: (counters) => {
          if (!this.verbose) return undefined;
          const elapsed = shortFormatTime((performance.now() - startedAt) / 1000);
          const total = counters.inputExhausted ? ` of ${counters.dispatchedTasks}` : '';
          return `[${label}]: Interrupted by Ctrl-C after ${counters.completedTasks}${total} tasks | elapsed: ${elapsed}`;
        },
      },
    };
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

  private async acquireBackend(): Promise<ParallelBackend> {
    if (this.backend) return this.backend;
    const name = this.backendName;
    // As joblib: one job runs in the caller, with no worker to start or data to copy.
    const oneJobHere = (name === 'threads' || name === 'processes') && this.workers === 1;
    const resolved = this.sequentialBecauseNested || oneJobHere ? 'sequential' : name;
    const factory = await backendFactory(resolved);
    if (!factory) throw invalidArgument('backend', 'a registered backend name', name);
    // Another run of this instance may have made one while the factory's module loaded.
    this.backend ??= factory({
      nJobs: this.workers,
      maxNbytes: this.maxNbytes,
      recycling: this.recycling,
      ...(this.maxWorkerMemoryMb === undefined ? {} : { maxWorkerMemoryMb: this.maxWorkerMemoryMb }),
      ...(this.backendOptions === undefined ? {} : { options: this.backendOptions }),
    });
    return this.backend;
  }
}
