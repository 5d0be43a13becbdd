/**
 * Argument checks shared by `new Memory()`, `memory.cache()`, `reduceSize()` and `expiresAfter()`: each
 * throws a `MemoryError` with code `ERR_MEMORY_OPTION` and a message that names the argument.
 */
import { parseBytes } from '../bytes.ts';
import { MemoryError } from './errors.ts';

export function optionError(message: string, cause?: unknown): MemoryError {
  return new MemoryError('ERR_MEMORY_OPTION', message, cause === undefined ? undefined : { cause });
}

/** Refuses anything but a non-null object (an options bag); `argName` is how the message names it. */
export function checkObject(value: unknown, argName: string): void {
  if (typeof value !== 'object' || value === null) {
    throw optionError(`${argName} must be an object; got ${JSON.stringify(value)}`);
  }
}

export function checkNonNegative(value: unknown, argName: string, integer: boolean): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw optionError(
      `${argName}: expected a non-negative ${integer ? 'integer' : 'number'}; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A bound on a wait in milliseconds: a non-negative number, `Infinity` (also when undefined) for none. */
export function checkWaitMs(value: unknown, argName: string): number {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw optionError(
      `${argName}: expected a non-negative number of milliseconds (Infinity: no limit); got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A verbosity level: booleans count as 0 and 1; undefined means "inherit". */
export function checkVerbose(value: unknown, argName: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return checkNonNegative(value, argName, false);
}

/** A byte size (see `parseBytes`), or a MemoryError naming the argument. */
export function checkBytes(value: unknown, argName: string): number {
  const bytes = parseBytes(value);
  if (bytes !== undefined) return bytes;
  throw optionError(
    `${argName}: expected a non-negative number of bytes or a size like '500M' or '10G'; got ${JSON.stringify(value)}`,
  );
}
