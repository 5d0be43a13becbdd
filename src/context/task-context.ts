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

/** How the executing side builds a task's context. */
export interface TaskScopeInit {
  readonly index: number;
  readonly attempt: number;
  readonly runSeed: number;
  /** The signal to hand out; made only when the task asks for it. */
  readonly signal: () => AbortSignal;
  readonly report: (value: unknown) => void;
  /** What the worker's initializer returned (`workerContext()`). */
  readonly workerContext: unknown;
  /** Where the task's console output goes: its batch id and position (worker side), for log capture. */
  readonly batch: number;
  readonly at: number;
}

/** One task's context. Seed and generator are made when first asked for. */
export class TaskScope implements TaskContext {
  readonly index: number;
  readonly attempt: number;
  readonly batch: number;
  readonly at: number;
  readonly workerContext: unknown;
  #seed: number | undefined;
  #random: (() => number) | undefined;
  #signal: AbortSignal | undefined;
  readonly #init: TaskScopeInit;

  constructor(init: TaskScopeInit) {
    this.#init = init;
    this.index = init.index;
    this.attempt = init.attempt;
    this.batch = init.batch;
    this.at = init.at;
    this.workerContext = init.workerContext;
  }

  get seed(): number {
    this.#seed ??= taskSeed(this.#init.runSeed, this.index);
    return this.#seed;
  }

  readonly random = (): number => {
    this.#random ??= sfc32(this.seed);
    return this.#random();
  };

  get signal(): AbortSignal {
    this.#signal ??= this.#init.signal();
    return this.#signal;
  }

  readonly report = (value: unknown): void => {
    this.#init.report(value);
  };
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
  if (scope instanceof TaskScope) return scope;
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
