/**
 * `retries`: how many times a failed task runs again, after how long, and which failures count. The
 * option as the user writes it, its checks, and the one decision the dispatcher asks of it.
 */
import { describeValue, InvalidArgumentError } from '../errors.ts';

/** The object form of `retries`. */
export interface RetryOptions {
  /** How many times a failed task runs again (0: never). */
  count: number;
  /** Wait before the first retry, ms (default 0). */
  delayMs?: number;
  /** Each further retry waits this many times longer than the one before (default 1: a fixed delay). */
  backoff?: number;
  /**
   * Whether this failure of attempt `attempt` (1 for the first run) is worth another run; default:
   * every failure is. Return false for errors that would fail again (a bad input).
   */
  retryOn?: (error: unknown, attempt: number) => boolean;
}

/** `retries` as given: a count, or the object form. */
export type Retries = number | RetryOptions;

/** `retries` resolved: what the dispatcher reads. */
export interface RetryPolicy {
  readonly count: number;
  readonly delayMs: number;
  readonly backoff: number;
  readonly retryOn: ((error: unknown, attempt: number) => boolean) | undefined;
}

const RETRY_KEYS = new Set(['count', 'delayMs', 'backoff', 'retryOn']);

function bad(name: string, expected: string, got: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${name} must be ${expected}; got ${describeValue(got)}.`);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** Checks `retries` (named `name` in messages) and resolves it; undefined when there are none. */
export function retryPolicy(value: unknown, name = 'retries'): RetryPolicy | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') {
    if (!isCount(value)) throw bad(name, 'an integer >= 0, or { count, delayMs, backoff, retryOn }', value);
    return value === 0 ? undefined : { count: value, delayMs: 0, backoff: 1, retryOn: undefined };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw bad(name, 'an integer >= 0, or { count, delayMs, backoff, retryOn }', value);
  for (const key of Object.keys(value)) {
    if (!RETRY_KEYS.has(key))
      throw new InvalidArgumentError(
        `${name}: unknown option ${JSON.stringify(key)}. Known options: count, delayMs, backoff, retryOn.`,
      );
  }
  const { count, delayMs = 0, backoff = 1, retryOn } = value as Partial<RetryOptions>;
  if (!isCount(count)) throw bad(`${name}.count`, 'an integer >= 0', count);
  if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0)
    throw bad(`${name}.delayMs`, 'a number of milliseconds >= 0', delayMs);
  if (typeof backoff !== 'number' || !Number.isFinite(backoff) || backoff < 1)
    throw bad(`${name}.backoff`, 'a number >= 1 (1: the same delay before every retry)', backoff);
  if (retryOn !== undefined && typeof retryOn !== 'function')
    throw bad(`${name}.retryOn`, 'a function (error, attempt) => boolean', retryOn);
  if (count === 0) return undefined;
  return { count, delayMs, backoff, retryOn };
}

/**
 * After attempt `attempt` (1 for the first run) failed with `error`: the delay before the next one,
 * or undefined when the task has no retry left or `retryOn` says no. A `retryOn` that throws counts
 * as no; what it threw is kept on the task's error as `retryOnError`.
 */
export function nextRetry(
  policy: RetryPolicy | undefined,
  error: unknown,
  attempt: number,
): { delayMs: number } | undefined {
  if (!policy || attempt > policy.count) return undefined;
  if (policy.retryOn) {
    let again: boolean;
    try {
      again = policy.retryOn(error, attempt) === true;
    } catch (thrown) {
      markAttempts(error, attempt);
      try {
        Object.defineProperty(error, 'retryOnError', { value: thrown, configurable: true, writable: true });
      } catch {
        // A primitive or frozen error: nothing to attach to.
      }
      return undefined;
    }
    if (!again) return undefined;
  }
  return { delayMs: policy.delayMs * policy.backoff ** (attempt - 1) };
}

/** Records on the last attempt's error how many attempts the task had. */
export function markAttempts(error: unknown, attempts: number): void {
  if (error === null || (typeof error !== 'object' && typeof error !== 'function')) return;
  try {
    Object.defineProperty(error, 'attempts', { value: attempts, configurable: true, writable: true });
  } catch {
    // A frozen thrown value keeps its shape.
  }
}
