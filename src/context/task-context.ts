/**
 * `taskContext()` and `workerContext()`: what a running task can know about itself (its index, attempt,
 * seed, a seeded generator, an abort signal) and say to the caller (`report`). The same code serves the
 * worker side (thread and process workers, which Redis workers run on) and the caller's thread
 * (`sequential`, `nJobs: 1`), through one AsyncLocalStorage: what a task schedules (timers, promises)
 * stays that task's.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { sfc32, taskSeed } from './prng.ts';

/** What `taskContext()` returns inside a running task. */
export interface TaskContext {
  /** The task's position in the run's input (0-based). */
  readonly index: number;
  /** 1 for the first try; more when the run retries failed tasks. */
  readonly attempt: number;
  /**
   * A 32-bit unsigned integer derived from the run's `seed` and the task's index only: the same task of
   * the same run gets the same seed whatever the backend, `nJobs` or batch size.
   */
  readonly seed: number;
  /**
   * A float in [0, 1), from sfc32 (PractRand's Small Fast Counter) started from `seed`: the same
   * sequence for the same task on every backend. Not for cryptography.
   */
  random(): number;
  /** Aborted when the run is aborted, fails fast on another task's error, or this task times out. */
  readonly signal: AbortSignal;
  /** Sends a small value to the caller: an `onEvent` `report` event, delivered before this task's result. */
  report(value: unknown): void;
}

/**
 * What the tasks of one batch share: the run's seed, where their signal and reports come from. One per
 * batch, so that a task's scope is one small object (a run of 100,000 trivial tasks makes 100,000).
 */
export interface BatchSource {
  readonly runSeed: number;
  readonly attempt: number;
  /** Batch id (worker side) for the output capture. */
  readonly batch: number;
  /** What the worker's initializer returned (`workerContext()`). */
  readonly workerContext: unknown;
  /** The signal task `scope` is handed; made only when the task asks for it. */
  signal(scope: TaskScope): AbortSignal;
  report(scope: TaskScope, value: unknown): void;
}

/** One task's context. Seed, generator and signal are made when first asked for. */
export class TaskScope implements TaskContext {
  private seedValue: number | undefined;
  private generator: (() => number) | undefined;
  private signalValue: AbortSignal | undefined;
  private boundRandom: (() => number) | undefined;
  private boundReport: ((value: unknown) => void) | undefined;

  constructor(
    readonly source: BatchSource,
    /** The task's position in its batch. */
    readonly at: number,
    readonly index: number,
  ) {}

  get attempt(): number {
    return this.source.attempt;
  }

  get batch(): number {
    return this.source.batch;
  }

  get workerContext(): unknown {
    return this.source.workerContext;
  }

  get seed(): number {
    this.seedValue ??= taskSeed(this.source.runSeed, this.index);
    return this.seedValue;
  }

  /** Bound, so that `const { random } = taskContext()` works. */
  get random(): () => number {
    this.boundRandom ??= () => {
      this.generator ??= sfc32(this.seed);
      return this.generator();
    };
    return this.boundRandom;
  }

  get signal(): AbortSignal {
    this.signalValue ??= this.source.signal(this);
    return this.signalValue;
  }

  get report(): (value: unknown) => void {
    this.boundReport ??= (value) => this.source.report(this, value);
    return this.boundReport;
  }
}

/**
 * Output written while a worker's initializer runs belongs to no task: a scope with no index, for the
 * log capture only.
 */
export interface SetupScope {
  readonly setup: true;
  readonly batch: number;
}

type Scope = TaskScope | SetupScope;

/** One store per program, even if two copies of joblib-ts are loaded (a task importing another path). */
const STORE_KEY = Symbol.for('joblib-ts.taskContext');
const globals = globalThis as { [STORE_KEY]?: AsyncLocalStorage<Scope> };
globals[STORE_KEY] ??= new AsyncLocalStorage<Scope>();
const store = globals[STORE_KEY];

/** Calls `call` as the task `scope` describes. */
export function runInScope<R>(scope: Scope, call: () => R): R {
  return store.run(scope, call);
}

/** The scope of the running code (a task, or a worker's initializer), if any. */
export function currentScope(): Scope | undefined {
  return store.getStore();
}

/** Runs `call` outside any task: what it writes is not captured as a task's output. */
export function outsideScopes<R>(call: () => R): R {
  return store.exit(call);
}

function currentTaskScope(what: string): TaskScope {
  const scope = store.getStore();
  // Not `instanceof`: a task may import another copy of joblib-ts than the worker's (its TaskScope class).
  if (scope !== undefined && !('setup' in scope)) return scope;
  throw new Error(
    `joblib-ts: ${what}() was called outside a task. Call it from a function that Parallel runs (delayed(fn)(...)), or from code that function calls or schedules.`,
  );
}

/**
 * The running task's context: `{ index, attempt, seed, random, signal, report }`. Throws when called
 * outside a task run by `Parallel`.
 */
export function taskContext(): TaskContext {
  return currentTaskScope('taskContext');
}

/**
 * What the `initializer` of `Parallel` returned in this worker (undefined without an initializer).
 * Throws when called outside a task run by `Parallel`.
 */
export function workerContext<T = unknown>(): T {
  return currentTaskScope('workerContext').workerContext as T;
}
