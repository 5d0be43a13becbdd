/**
 * `errorMode: 'settled'`: one entry per task, shaped as `Promise.allSettled`'s, instead of the run
 * failing at the first error. The entry types of the three `returnAs` modes, and how they are made.
 */

/** How a run treats a failed task: `'fail-fast'` (the default, joblib's) fails the run; `'settled'` records it. */
export type ErrorMode = 'fail-fast' | 'settled';

/** The entry of a task that returned (or resolved) `value`. */
export interface FulfilledEntry<R> {
  readonly status: 'fulfilled';
  readonly value: R;
}

/**
 * The entry of a task that failed: it threw, ran past `timeoutMs` (`TimeoutError`), crashed its worker
 * (`WorkerCrashedError`), or returned what cannot be sent back. `reason` carries `taskIndex`,
 * `functionName` and, when retries were allowed, `attempts`.
 */
export interface RejectedEntry {
  readonly status: 'rejected';
  readonly reason: unknown;
}

/** One task's outcome in settled mode: what `Promise.allSettled` gives for one promise. */
export type SettledResult<R> = FulfilledEntry<R> | RejectedEntry;

/** An unordered stream's entry in settled mode: the task's input position and its outcome. */
export type IndexedSettledResult<R> =
  | { readonly index: number; readonly status: 'fulfilled'; readonly value: R }
  | { readonly index: number; readonly status: 'rejected'; readonly reason: unknown };

export function fulfilled<R>(value: R): FulfilledEntry<R> {
  return { status: 'fulfilled', value };
}

export function rejected(reason: unknown): RejectedEntry {
  return { status: 'rejected', reason };
}

export const ERROR_MODES: readonly ErrorMode[] = ['fail-fast', 'settled'];
