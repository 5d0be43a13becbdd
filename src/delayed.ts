/**
 * `delayed(fn)(...args)`: records a call without making it. The task carries the awaited result type
 * of `fn` so that `Parallel.run` can return typed results.
 */

// biome-ignore lint/suspicious/noExplicitAny: `any[]` parameters are what make every function assignable here; the public types below never expose it.
export type AnyFunction = (...args: any[]) => unknown;

declare const resultType: unique symbol;
const TASK_BRAND = Symbol.for('joblib-ts.task');

/** One recorded call: `fn(...args)`, not yet made. Create it with `delayed(fn)(...args)`. */
export interface Task<R = unknown> {
  readonly fn: AnyFunction;
  readonly args: readonly unknown[];
  /** Type-level only: the awaited result of the call. Never present at run time. */
  readonly [resultType]?: R;
}

/** The result type a task resolves to. */
export type TaskResult<T> = T extends Task<infer R> ? R : never;

/** A function made into a task factory by `delayed`: same parameters, returns a `Task`. */
export type DelayedFunction<F extends AnyFunction> = (...args: Parameters<F>) => Task<Awaited<ReturnType<F>>>;

class TaskRecord<R> implements Task<R> {
  declare readonly [resultType]?: R;
  constructor(
    readonly fn: AnyFunction,
    readonly args: readonly unknown[],
  ) {}
  get [TASK_BRAND](): true {
    return true;
  }
}

/**
 * Wraps `fn` so that calling it records the call instead of making it, as joblib's `delayed` does:
 * `delayed(Math.pow)(i, 2)` is the task "Math.pow(i, 2)". Arguments are checked against `fn`'s
 * parameters at compile time.
 */
export function delayed<F extends AnyFunction>(fn: F): DelayedFunction<F> {
  if (typeof fn !== 'function') {
    throw new TypeError(`delayed(fn): fn must be a function; got ${fn === null ? 'null' : typeof fn}.`);
  }
  return (...args: Parameters<F>) => new TaskRecord<Awaited<ReturnType<F>>>(fn, args);
}

/** True for values made by `delayed(fn)(...)`. */
export function isTask(value: unknown): value is Task {
  return value instanceof TaskRecord || (typeof value === 'object' && value !== null && TASK_BRAND in value);
}
