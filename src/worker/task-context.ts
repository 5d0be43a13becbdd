/**
 * Which task a piece of worker code belongs to, carried through timers and promises (AsyncLocalStorage):
 * a throw from a timer, or a rejection nobody handles, that a task left behind after it returned kills
 * the worker, and the worker then names that task rather than whichever one happens to be running.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface TaskPosition {
  /** The batch's id. */
  readonly batch: number;
  /** The task's position in the batch. */
  readonly at: number;
}

const context = new AsyncLocalStorage<TaskPosition>();

/** Calls `call` as task `at` of batch `batch`: what it schedules stays that task's. */
export function runAsTask<R>(batch: number, at: number, call: () => R): R {
  return context.run({ batch, at }, call);
}

/** The task the running code (a timer's callback, a rejection's handler) comes from, if any. */
export function currentTask(): TaskPosition | undefined {
  return context.getStore();
}
