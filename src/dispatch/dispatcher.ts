/**
 * One `run()`: reads tasks lazily from the input, groups them into batches, keeps a bounded number of
 * batches in flight, puts results back in input order, and stops everything at the first error.
 */
import type { BackendBatch, BatchInitializer, BatchOutcome, ParallelBackend } from '../backends/backend.ts';
import { CaptureSession } from '../capture/session.ts';
import { type AnyFunction, isTask, type Task } from '../delayed.ts';
import {
  attachTaskInfo,
  describeValue,
  InvalidArgumentError,
  TimeoutError,
  UnreachableFunctionError,
  UnsendableArgumentError,
  WorkerCrashedError,
} from '../errors.ts';
import { type EventDraft, EventHub, type EventListener } from '../events.ts';
import { watchInterrupts } from '../interrupt.ts';
import { cachedLocation, type LocatedFunction, locateFunction } from '../locate/index.ts';
import { assertImportableByWorker } from '../main-guard.ts';
import { isThenable } from '../values.ts';
import { unclonableReason } from '../wire/clonable.ts';
import type { BatchSizer } from './batch-size.ts';
import type { RunCounters } from './counters.ts';
import { type RecoveryHost, sliceBatch, TaskRecovery } from './recovery.ts';
import type { RetryPolicy } from './retry.ts';
import { type ErrorMode, fulfilled, rejected } from './settled.ts';

export interface RunObserver {
  /** After each completed batch. */
  progress(counters: RunCounters, total: number | undefined): void;
  /** The one line to print if Ctrl-C stops this run (undefined when not verbose). */
  interruptedLine?(counters: RunCounters): string | undefined;
  /** Once, when the run settles. */
  finish(outcome: 'done' | 'failed', counters: RunCounters): void;
}

export interface RunSpec {
  readonly backend: ParallelBackend;
  readonly runId: number;
  readonly tasks: Iterable<Task> | AsyncIterable<Task>;
  readonly sizer: BatchSizer;
  /** Batches allowed in flight at once. */
  readonly preDispatch: number;
  readonly observer: RunObserver;
  /** Aborting rejects the run with the signal's reason and stops its running tasks. */
  readonly signal?: AbortSignal;
  /** A task running longer fails the run with a `TimeoutError` (worker backends only). */
  readonly timeoutMs?: number;
  /**
   * Streaming: receives each batch's results as it completes, instead of collecting them into the
   * array the run resolves to (which then resolves to an empty array).
   */
  readonly onResults?: (firstIndex: number, results: unknown[]) => void;
  /** Streaming back-pressure: while it returns false, no further batch is dispatched. */
  readonly mayDispatch?: () => boolean;
  /** The run's seed: every task's `taskContext().seed` derives from it and the task's index. */
  readonly seed?: number;
  /** `initializer: delayed(setup)(...)`, with the key that names its call configuration. */
  readonly initializer?: { readonly key: string; readonly task: Task };
  /** Receives the run's events (`onEvent`, logs, progress): run start and end, logs, reports, workers. */
  readonly listener?: EventListener;
  /** Also one `task-done` event per task (only when someone reads them: a run of 100,000 tasks makes 100,000). */
  readonly taskEvents?: boolean;
  /** `'settled'`: a failed task gives a rejected entry instead of failing the run (results are entries). */
  readonly errorMode?: ErrorMode;
  /** How often, and when, a failed task runs again. */
  readonly retry?: RetryPolicy;
  /** No batch has more tasks than this (`maxTasksPerWorker`). */
  readonly maxBatchSize?: number;
}

/** A handle on a run in progress, for streaming consumers. */
export interface RunControl {
  readonly done: Promise<unknown[]>;
  /** The consumer left: stop the run (tasks not started never start; running ones are stopped). */
  stop(): void;
  /** Dispatch more if the back-pressure condition allows it again. */
  resume(): void;
}

type Source = { next(): IteratorResult<unknown> | Promise<IteratorResult<unknown>>; return?(): unknown };

function openSource(tasks: Iterable<Task> | AsyncIterable<Task>): Source {
  if (tasks && typeof (tasks as Iterable<Task>)[Symbol.iterator] === 'function') {
    return (tasks as Iterable<Task>)[Symbol.iterator]();
  }
  if (tasks && typeof (tasks as AsyncIterable<Task>)[Symbol.asyncIterator] === 'function') {
    return (tasks as AsyncIterable<Task>)[Symbol.asyncIterator]();
  }
  throw new InvalidArgumentError(
    `Parallel.run(tasks): tasks must be an Iterable or AsyncIterable of delayed(fn)(...args) tasks; got ${describeValue(tasks)}.`,
  );
}

/** How long running tasks of a stream the consumer left may take to finish before their workers are stopped. */
const STOP_GRACE_MS = 200;

/** The reason a stream's run was stopped: its consumer left the loop. Never reaches user code. */
class ConsumerLeftError extends Error {
  override name = 'ConsumerLeftError';
}

/** Finds which argument of which task cannot be copied to a worker, after a send failed. */
function findUnsendable(batch: BackendBatch, cause: unknown): UnsendableArgumentError | undefined {
  for (let t = 0; t < batch.args.length; t++) {
    const args = batch.args[t] as readonly unknown[];
    for (let a = 0; a < args.length; a++) {
      try {
        const lost = unclonableReason(args[a]);
        if (lost !== undefined) throw new TypeError(lost);
        structuredClone(args[a]);
      } catch (error) {
        const taskIndex = batch.firstIndex + t;
        const name = batch.locations[t]?.name ?? batch.fns[t]?.name ?? 'task';
        const reason = (error instanceof Error ? error.message : String(error)).replace(/\.+$/, '');
        return new UnsendableArgumentError(
          `Task ${taskIndex} (${name}): argument ${a} (${describeValue(args[a])}) cannot be sent to a worker: ${reason}. Arguments travel by structured clone: pass plain data (numbers, strings, arrays, plain objects, typed arrays, Map, Set, Date, BigInt), not functions, class instances with behaviour, or handles.`,
          taskIndex,
          name,
          a,
          { cause },
        );
      }
    }
  }
  return undefined;
}

/**
 * Puts a batch's results in place. Packed results (a Float64Array) get a loop of their own: one loop
 * fed both kinds would be polymorphic, and slow in the first big run, before it is optimized.
 */
function copyResults(target: unknown[], at: number, results: readonly unknown[] | Float64Array): void {
  if (results instanceof Float64Array) copyNumbers(target, at, results);
  else for (let i = 0; i < results.length; i++) target[at + i] = results[i];
}

function copyNumbers(target: unknown[], at: number, results: Float64Array): void {
  for (let i = 0; i < results.length; i++) target[at + i] = results[i];
}

export function runTasks(spec: RunSpec): Promise<unknown[]> {
  return new TaskRun(spec).promise;
}

export function startRun(spec: RunSpec): RunControl {
  const run = new TaskRun(spec);
  return { done: run.promise, stop: () => run.stop(), resume: () => void run.resume() };
}

class TaskRun implements RunCounters {
  readonly promise: Promise<unknown[]>;
  completedTasks = 0;
  dispatchedTasks = 0;
  dispatchedBatches = 0;
  inputExhausted = false;
  aborted = false;

  private results: unknown[] = [];
  private readonly source: Source;
  private readonly knownLength: number | undefined;
  private inFlight = 0;
  /** The input has ended; becomes `inputExhausted` once the batch being read is in flight. */
  private sawEnd = false;
  private pumping = false;
  private settled = false;
  private resolve!: (results: unknown[]) => void;
  private reject!: (error: unknown) => void;
  private readonly checkedModules = new Set<string>();
  private readonly cleanups: (() => void)[] = [];
  private lastFn: AnyFunction | undefined;
  private lastLocation: LocatedFunction | undefined;
  /** This run's functions sent by value and their captures (a snapshot taken as the run starts). */
  private capture: CaptureSession | undefined;
  /** The input when it is a plain array, and the index of its next task. */
  private list: readonly unknown[] | undefined;
  private nextIndex = 0;
  /** Where the run's events go: the backend's hub (or one of its own), listened to by `spec.listener`. */
  private readonly hub: EventHub;
  private readonly startedAt = performance.now();
  /** The initializer as batches carry it, once located. */
  private init: BatchInitializer | undefined;
  /** Settled mode or retries: a failed task is handled on its own (recovery.ts). */
  private readonly recovery: TaskRecovery | undefined;
  private readonly settledMode: boolean;
  /** Tasks that failed for good in settled mode (run-end's `failed`). */
  private failedTasks = 0;
  /** The time per task of the outcome being handed to recovery (its task-done events' durationMs). */
  private recoveringTaskMs = 0;

  constructor(private readonly spec: RunSpec) {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    const { tasks, signal } = spec;
    this.knownLength = Array.isArray(tasks) ? tasks.length : undefined;
    // A plain array (not a subclass with its own iterator) is read by index.
    if (
      Array.isArray(tasks) &&
      Object.getPrototypeOf(tasks) === Array.prototype &&
      !Object.hasOwn(tasks, Symbol.iterator)
    )
      this.list = tasks;
    if (this.knownLength !== undefined && !spec.onResults) this.results = new Array(this.knownLength);
    this.source = openSource(tasks);
    this.hub = spec.backend.events ?? new EventHub();
    this.settledMode = spec.errorMode === 'settled';
    this.recovery =
      this.settledMode || spec.retry ? new TaskRecovery(this.recoveryHost(), spec.retry) : undefined;
    if (this.recovery) {
      const recovery = this.recovery;
      this.cleanups.push(() => recovery.dispose());
    }
    if (signal?.aborted) {
      this.settled = true;
      this.aborted = true;
      // Its events still frame it, for a progress bar or a log that counts runs.
      if (spec.listener) {
        const unlisten = this.startEvents(spec.listener);
        this.runEnd('aborted', 0);
        unlisten();
      }
      spec.observer.finish('failed', this);
      this.reject(signal.reason);
      return;
    }
    spec.backend.startRun?.(spec.runId);
    if (spec.listener) this.cleanups.push(this.startEvents(spec.listener));
    if (signal) {
      const onAbort = () => this.fail(signal.reason, true);
      signal.addEventListener('abort', onAbort, { once: true });
      this.cleanups.push(() => signal.removeEventListener('abort', onAbort));
    }
    this.cleanups.push(
      watchInterrupts({
        interrupt: (error, exiting) => this.fail(error, true, exiting),
        progressLine: () => spec.observer.interruptedLine?.(this),
      }),
    );
    void this.pump();
  }

  /** Dispatches batches until the window is full or the input ends. Never runs twice at once. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      const { mayDispatch } = this.spec;
      while (
        !this.settled &&
        !this.inputExhausted &&
        this.inFlight < this.spec.preDispatch &&
        (!mayDispatch || mayDispatch())
      ) {
        const batch = await this.nextBatch();
        if (this.settled) return;
        if (batch) this.submit(batch);
        // Only now: while the batch was being read, results may have come in, and the run must not
        // look finished before its last batch is in flight.
        if (this.sawEnd) this.inputExhausted = true;
      }
      this.finishIfDone();
    } catch (error) {
      this.fail(error);
    } finally {
      this.pumping = false;
    }
  }

  private async nextBatch(): Promise<BackendBatch | undefined> {
    let size = Math.min(this.spec.sizer.size, this.spec.maxBatchSize ?? Number.POSITIVE_INFINITY);
    if (this.knownLength !== undefined && size > 1) {
      // The tail: smaller batches so that no worker is left with a long last batch while others idle.
      const remaining = this.knownLength - this.dispatchedTasks;
      size = Math.max(1, Math.min(size, Math.ceil(remaining / (2 * this.spec.backend.concurrency))));
    }
    const firstIndex = this.dispatchedTasks;
    const { inProcess } = this.spec.backend;
    const list = this.list;
    // From an array the batch's length is known: arrays of that length, not grown task by task (the
    // garbage of growing them is what makes the collector copy the caller's tasks sooner and more often).
    const exact = list ? Math.max(0, Math.min(size, list.length - this.nextIndex)) : 0;
    const fns: AnyFunction[] = new Array(exact);
    const locations: (LocatedFunction | undefined)[] = new Array(exact);
    const args: (readonly unknown[])[] = new Array(exact);
    let count = 0;
    let uniform = true;
    while (count < size) {
      let task: unknown;
      if (list) {
        // An array is read by index: no iterator result per task (the first run is not optimized yet).
        if (count >= exact) {
          if (this.nextIndex >= list.length) this.sawEnd = true;
          break;
        }
        task = list[this.nextIndex++];
      } else {
        let step = this.source.next();
        if (isThenable(step)) step = await step;
        if (step.done) {
          this.sawEnd = true;
          break;
        }
        task = step.value;
      }
      if (!isTask(task)) {
        throw new InvalidArgumentError(
          `Parallel.run(tasks): item ${firstIndex + count} is ${describeValue(task)}, not a task. Make each item with delayed(fn)(...args).`,
        );
      }
      const fn = task.fn;
      if (count > 0 && fn !== fns[0]) uniform = false;
      fns[count] = fn;
      args[count] = task.args;
      if (inProcess) {
        locations[count] = undefined;
      } else {
        // Most runs call one function: skip the WeakMap lookup when it is the same as the last task's.
        if (fn !== this.lastFn) {
          this.lastLocation = cachedLocation(fn) ?? this.capture?.known(fn) ?? (await this.locate(fn));
          this.lastFn = fn;
        }
        locations[count] = this.lastLocation;
      }
      count++;
    }
    // An array's end is known without reading past it, so the last progress message can say "finished".
    if (this.knownLength !== undefined && firstIndex + count >= this.knownLength) this.sawEnd = true;
    if (fns.length === 0) return undefined;
    const { runId, timeoutMs } = this.spec;
    const batch: { -readonly [K in keyof BackendBatch]: BackendBatch[K] } = {
      runId,
      firstIndex,
      fns,
      locations,
      args,
    };
    if (this.spec.backend.byValue && !inProcess) {
      // Functions and class instances among the arguments travel as the task's function does.
      const encoded = await this.session().encodeArgs(args);
      if (encoded) {
        batch.args = encoded.args as unknown[][];
        batch.deps = encoded.deps;
        batch.encoded = true;
      }
    }
    if (timeoutMs !== undefined) batch.timeoutMs = timeoutMs;
    if (uniform) batch.uniform = true;
    if (this.spec.seed !== undefined) batch.seed = this.spec.seed;
    if (this.spec.initializer) batch.init = this.init ?? (await this.locateInit(this.spec.initializer));
    if (this.recovery) batch.keepGoing = true;
    return batch;
  }

  /** The consumer of a stream left early: stop now, and stop running tasks that do not end soon. */
  stop(): void {
    if (this.settled) return;
    this.fail(new ConsumerLeftError(), false);
    const { backend, runId } = this.spec;
    if (this.inFlight > 0 && backend.abortRun) {
      // Short tasks finish by themselves; a long one would keep its worker busy for nothing.
      setTimeout(() => {
        if (this.inFlight > 0) backend.abortRun?.(runId);
      }, STOP_GRACE_MS).unref();
    }
  }

  resume(): Promise<void> {
    return this.pump();
  }

  private session(): CaptureSession {
    this.capture ??= new CaptureSession(this.spec.runId);
    return this.capture;
  }

  private async locateInit(initializer: NonNullable<RunSpec['initializer']>): Promise<BatchInitializer> {
    const { fn, args } = initializer.task;
    const location = this.spec.backend.inProcess ? undefined : await this.locate(fn);
    this.init = { key: initializer.key, fn, location, args };
    return this.init;
  }

  /** Listens for the run's events, and emits its `run-start`; returns the unsubscribe. */
  private startEvents(listener: EventListener): () => void {
    const { spec } = this;
    const unlisten = this.hub.listen(spec.runId, listener);
    this.emit({
      type: 'run-start',
      runId: spec.runId,
      backend: spec.backend.name,
      workers: spec.backend.concurrency,
      total: this.knownLength,
      seed: spec.seed ?? 0,
    });
    return unlisten;
  }

  private emit(draft: EventDraft): void {
    if (this.spec.listener) this.hub.emit(draft);
  }

  /** One `task-done` event per task of a completed batch, the batch's time shared among them. */
  private tasksDone(batch: BackendBatch, count: number, seconds: number): void {
    const durationMs = (seconds * 1000) / count;
    const { runId, firstIndex } = batch;
    const attempt = batch.attempt ?? 1;
    for (let i = 0; i < count; i++)
      this.hub.emit({ type: 'task-done', runId, index: firstIndex + i, attempt, durationMs });
  }

  private runEnd(status: 'done' | 'failed' | 'aborted', failed: number): void {
    this.emit({
      type: 'run-end',
      runId: this.spec.runId,
      status,
      completed: this.completedTasks,
      failed,
      durationMs: performance.now() - this.startedAt,
    });
  }

  private async locate(fn: AnyFunction): Promise<LocatedFunction> {
    // Backends whose workers take only importable functions refuse the others, as before.
    const { backend } = this.spec;
    const located = backend.byValue
      ? await this.session().locate(fn)
      : await locateFunction(fn).catch((error: unknown) => {
          if (backend.byValueHint && error instanceof UnreachableFunctionError)
            error.message += `\n${backend.byValueHint}`;
          throw error;
        });
    if (located.ref.kind === 'module' && !this.checkedModules.has(located.ref.url)) {
      assertImportableByWorker(located.ref.url, located.name);
      this.checkedModules.add(located.ref.url);
    }
    return located;
  }

  private submit(batch: BackendBatch, again = false): void {
    const count = batch.fns.length;
    this.inFlight++;
    if (!again) {
      this.dispatchedTasks += count;
      this.dispatchedBatches++;
    }
    const startedAt = performance.now();
    let pending: Promise<BatchOutcome>;
    try {
      pending = this.spec.backend.runBatch(batch);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (outcome) => this.onOutcome(batch, outcome, (performance.now() - startedAt) / 1000),
      (error) => this.onBatchError(batch, error),
    );
  }

  private onOutcome(batch: BackendBatch, outcome: BatchOutcome, seconds: number): void {
    this.inFlight--;
    if (this.settled) return;
    if (
      this.recovery &&
      outcome.ok !== 'cancelled' &&
      (this.settledMode ||
        outcome.ok === false ||
        outcome.failures ||
        outcome.results.length < batch.fns.length)
    ) {
      this.spec.sizer.completed(batch.fns.length, seconds);
      this.recoveringTaskMs = (seconds * 1000) / batch.fns.length;
      this.recovery.outcome(batch, outcome);
      if (!this.finishIfDone()) void this.pump();
      return;
    }
    if (outcome.ok === true) {
      const { results } = outcome;
      if (this.spec.taskEvents && this.spec.listener) this.tasksDone(batch, results.length, seconds);
      if (this.spec.onResults) this.spec.onResults(batch.firstIndex, results);
      else copyResults(this.results, batch.firstIndex, results);
      this.completedTasks += results.length;
      this.spec.sizer.completed(results.length, seconds);
      this.spec.observer.progress(this, this.knownLength);
      // A worker stopped early to be replaced (maxWorkerRssMb): the rest of the batch runs elsewhere.
      if (results.length < batch.fns.length)
        this.submit(sliceBatch(batch, results.length, batch.fns.length), true);
      if (!this.finishIfDone()) void this.pump();
      return;
    }
    if (outcome.ok === false) {
      const taskIndex = batch.firstIndex + outcome.failedAt;
      const fn = batch.fns[outcome.failedAt];
      const functionName = batch.locations[outcome.failedAt]?.name ?? fn?.name ?? 'task';
      this.fail(attachTaskInfo(outcome.error, { taskIndex, functionName }));
      return;
    }
    // Cancelled batches only happen once the run has settled (handled above) or was cancelled by
    // another owner of the backend; either way there is nothing left to do for this run.
    this.fail(new Error(`joblib-ts: batch starting at task ${batch.firstIndex} was cancelled.`));
  }

  private onBatchError(batch: BackendBatch, error: unknown): void {
    this.inFlight--;
    if (this.settled) return;
    if (this.recovery) {
      this.recovery.batchError(batch, error);
      if (!this.finishIfDone()) void this.pump();
      return;
    }
    const ours = error instanceof WorkerCrashedError || error instanceof TimeoutError;
    this.fail(ours ? error : (findUnsendable(batch, error) ?? error));
  }

  /** What recovery.ts may do to this run. */
  private recoveryHost(): RecoveryHost {
    const run = this;
    const { spec } = this;
    const store = (firstIndex: number, entries: unknown[]) => {
      if (spec.onResults) spec.onResults(firstIndex, entries);
      else copyResults(this.results, firstIndex, entries);
      this.completedTasks += entries.length;
      spec.observer.progress(this, this.knownLength);
    };
    return {
      runId: spec.runId,
      events: this.hub,
      settled: this.settledMode,
      get done() {
        return run.settled;
      },
      deliver: (firstIndex, results) => {
        // task-done's attempt is the one recovery counts: a task that succeeded on its retry says 2.
        if (spec.taskEvents && spec.listener) {
          const { runId } = spec;
          const durationMs = this.recoveringTaskMs;
          const recovery = this.recovery as TaskRecovery;
          for (let i = 0; i < results.length; i++) {
            const index = firstIndex + i;
            this.hub.emit({
              type: 'task-done',
              runId,
              index,
              attempt: recovery.attemptOf(index),
              durationMs,
            });
          }
        }
        store(firstIndex, this.settledMode ? Array.from(results, fulfilled) : Array.from(results));
      },
      deliverFailure: (index, error) => {
        this.failedTasks++;
        store(index, [rejected(error)]);
      },
      resubmit: (batch) => {
        if (!this.settled) this.submit(batch, true);
      },
      hold: () => {
        this.inFlight++;
      },
      release: () => {
        this.inFlight--;
        if (!this.finishIfDone()) void this.pump();
      },
      fail: (error) => this.fail(error),
      findUnsendable: (batch, error) => {
        const found = findUnsendable(batch, error);
        return found ? { taskIndex: found.taskIndex, error: found } : undefined;
      },
    };
  }

  private finishIfDone(): boolean {
    if (this.settled || !this.inputExhausted || this.inFlight > 0) return false;
    this.settled = true;
    this.runEnd('done', this.failedTasks);
    for (const cleanup of this.cleanups) cleanup();
    this.spec.backend.endRun?.(this.spec.runId);
    this.spec.observer.finish('done', this);
    this.resolve(this.results);
    return true;
  }

  /**
   * Settles the run with `error`. Tasks not started never start; with `hard` (abort, Ctrl-C) the
   * running ones are stopped too, by terminating their workers. Otherwise workers finish the task
   * in hand and stay up for the next run. `unsettled`: the program is exiting (Ctrl-C), leave the
   * promise pending rather than reject it into an unhandled rejection.
   */
  private fail(error: unknown, hard = false, unsettled = false): void {
    if (this.settled) return;
    this.settled = true;
    this.aborted = hard;
    this.runEnd(
      hard || error instanceof ConsumerLeftError ? 'aborted' : 'failed',
      this.failedTasks + (hard ? 0 : 1),
    );
    for (const cleanup of this.cleanups) cleanup();
    const { backend, runId } = this.spec;
    if (hard && backend.abortRun) backend.abortRun(runId);
    else backend.cancelRun(runId);
    backend.endRun?.(runId);
    try {
      const closing = this.source.return?.();
      if (isThenable(closing)) (closing as Promise<unknown>).catch(() => {});
    } catch {
      // The input's own cleanup failing must not hide the task's error.
    }
    this.spec.observer.finish('failed', this);
    if (!unsettled) this.reject(error);
  }
}
