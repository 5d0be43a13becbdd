/**
 * Marks the errors thrown by a worker's initializer (`Parallel`'s `initializer`): no task of the batch
 * ran, and a Redis worker passes such an error on as the initializer's, not as its first task's.
 */
const marked = new WeakSet<object>();

export function markInitializerError<T>(error: T): T {
  if (error !== null && (typeof error === 'object' || typeof error === 'function')) marked.add(error);
  return error;
}

export function isInitializerError(error: unknown): boolean {
  return error !== null && (typeof error === 'object' || typeof error === 'function') && marked.has(error);
}
