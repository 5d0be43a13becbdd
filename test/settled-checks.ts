/**
 * Checks that issue 15's settled tests share on every backend (test/dispatch/settled.test.ts on threads
 * and processes, test/backends/redis/settled.test.ts on Redis).
 */
import assert from 'node:assert/strict';
import { type SettledResult, type Task, TimeoutError, WorkerCrashedError } from '../src/index.ts';

/** An input of unknown length: batches keep the size asked for (no smaller tail batches). */
export function* lazily<T>(tasks: readonly Task<T>[]): Generator<Task<T>> {
  yield* tasks;
}

/** The reason of an entry that must be rejected. */
export function reasonOf(entry: SettledResult<unknown> | undefined): Error & Record<string, unknown> {
  assert.ok(entry && entry.status === 'rejected', `expected a rejected entry, got ${JSON.stringify(entry)}`);
  return entry.reason as Error & Record<string, unknown>;
}

/**
 * The entries of a settled run of `mixed(i, kinds[i])` (test/fixtures/settled-tasks.ts) whose kinds start
 * with ok, throw, ok, spin, ok, exit: each ok task's value, each failure in its own entry with its index,
 * the throw's RangeError, the spin's TimeoutError, and the exit's WorkerCrashedError with its exit code and
 * arguments.
 */
export function checkMixedEntries(
  kinds: readonly string[],
  entries: readonly SettledResult<unknown>[],
): void {
  assert.deepEqual(kinds.slice(0, 6), ['ok', 'throw', 'ok', 'spin', 'ok', 'exit']);
  assert.equal(entries.length, kinds.length);
  kinds.forEach((kind, i) => {
    if (kind === 'ok') assert.deepEqual(entries[i], { status: 'fulfilled', value: i * 2 });
    else assert.equal(reasonOf(entries[i]).taskIndex, i);
  });
  assert.ok(reasonOf(entries[1]) instanceof RangeError);
  assert.ok(reasonOf(entries[3]) instanceof TimeoutError);
  const crash = reasonOf(entries[5]);
  assert.ok(crash instanceof WorkerCrashedError);
  assert.equal(crash.exitCode, 3);
  assert.equal(crash.argsSummary, "(5, 'exit')");
}
