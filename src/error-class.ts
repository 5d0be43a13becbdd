/**
 * Finds the class of an error thrown in a worker among the exports of the task's own module, so that the
 * error rebuilt on the caller's side is an instance of it (`instanceof` works as if the task ran here).
 */
import type { LocatedFunction } from './locate/index.ts';

/** A constructor of errors, as `deserializeThrown` needs to rebuild one by class name. */
export type ErrorClass = new (message?: string) => Error;

/** The error class named `name` that the task's module exports, if any. */
export function findErrorClass(located: LocatedFunction | undefined, name: string): ErrorClass | undefined {
  const namespace = located?.namespace;
  if (!namespace) return undefined;
  for (const value of Object.values(namespace)) {
    if (typeof value === 'function' && value.name === name && value.prototype instanceof Error) {
      return value as ErrorClass;
    }
  }
  return undefined;
}
