/** Small facts about arbitrary values, needed on both sides of a worker boundary. */

/** A promise or any object with a `then` method: what `await` would wait for. */
export function isThenable<T = unknown>(value: unknown): value is PromiseLike<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
