/**
 * Issue 16's onEvent check for a run with failures, retries and a crash (errorMode 'settled',
 * retries: 1), shared by the local backends' test (events-retries.test.ts) and the Redis one
 * (backends/redis/events.test.ts): the tasks of the run, and what its stream of events must say.
 */
import assert from 'node:assert/strict';
import { delayed, type JoblibEvent, type SettledResult, type Task } from '../src/index.ts';
import { exitsAt, failsAt, failsThenWorks } from './fixtures/context-tasks.ts';

/** Task indices of the run. */
export const COUNT = 9;
export const OK = [0, 1, 3, 5, 6, 7];
export const FLAKY = 2; // throws on its first run, then succeeds
export const ALWAYS = 4; // throws on every run
export const CRASH = 8; // ends its worker on every run (or, without crashes, succeeds like the others)

/**
 * The run's tasks; `dir` counts the flaky task's runs. Without `crash`, task CRASH is an ordinary task
 * (on `sequential` a task that ends its worker would end the caller itself).
 */
export function retriesTasks(dir: string, crash: boolean): Task<unknown>[] {
  return Array.from({ length: COUNT }, (_, i): Task<unknown> => {
    if (i === FLAKY) return delayed(failsThenWorks)(dir, i, 1);
    if (i === ALWAYS) return delayed(failsAt)(i, i);
    if (i === CRASH && crash) return delayed(exitsAt)(i, i);
    return delayed(failsAt)(i, -1);
  });
}

/**
 * Checks the results and the events of a run of `retriesTasks(dir, crash)`: run-start first and
 * run-end last, once each; each task ends once (task-done, or task-failed without a retry) with
 * nothing of it after; attempts go up by one, each task-failed with willRetry followed by its
 * task-retried; each crash told by worker-crashed naming its task, then its worker's worker-exited,
 * before the task's end. Worker events that name no task (worker-started, a worker-exited) may come
 * anywhere between run-start and run-end.
 */
export function checkRetriesRun(
  entries: readonly SettledResult<unknown>[],
  events: readonly JoblibEvent[],
  crash: boolean,
): void {
  const ok = crash ? OK : [...OK, CRASH];
  const failing = crash ? [ALWAYS, CRASH] : [ALWAYS];
  // The results: the flaky task succeeded on its retry, and its task context said so.
  for (const i of ok) assert.deepEqual(entries[i], { status: 'fulfilled', value: i });
  assert.deepEqual(entries[FLAKY], { status: 'fulfilled', value: { run: 2, attempt: 2 } });
  for (const i of failing) assert.equal(entries[i]?.status, 'rejected', `task ${i}`);

  const types = events.map((e) => e.type);
  const all = types.join(' ');
  assert.equal(types[0], 'run-start', all);
  assert.equal(types.at(-1), 'run-end', all);
  assert.equal(types.filter((t) => t === 'run-start' || t === 'run-end').length, 2, all);
  const runId = events[0]?.runId;
  assert.ok(
    events.every((e) => e.runId === runId),
    'every event is of this run',
  );

  // Each index ends exactly once: one task-done, or one task-failed that is not retried; nothing of
  // it comes after that.
  const final = new Map<number, number>();
  events.forEach((e, at) => {
    if (e.type !== 'task-done' && !(e.type === 'task-failed' && !e.willRetry)) return;
    assert.ok(!final.has(e.index), `task ${e.index} ended twice: ${all}`);
    final.set(e.index, at);
  });
  assert.deepEqual(
    [...final.keys()].sort((a, b) => a - b),
    Array.from({ length: COUNT }, (_, i) => i),
  );
  events.forEach((e, at) => {
    if (!('index' in e) || e.index === undefined || e.type === 'worker-crashed') return;
    assert.ok(at <= (final.get(e.index) as number), `a ${e.type} of task ${e.index} after its end: ${all}`);
  });
  const endOf = (i: number) => events[final.get(i) as number];
  for (const i of [...ok, FLAKY]) assert.equal(endOf(i)?.type, 'task-done', `task ${i}`);
  for (const i of failing) assert.equal(endOf(i)?.type, 'task-failed', `task ${i}`);

  // Attempts: each index's attempts go up by one; a task-failed with willRetry is followed (for its
  // index) by a task-retried of the next attempt, and that attempt is the next event's.
  for (let i = 0; i < COUNT; i++) {
    const own = events.filter(
      (e): e is Extract<JoblibEvent, { type: 'task-done' | 'task-failed' | 'task-retried' }> =>
        (e.type === 'task-done' || e.type === 'task-failed' || e.type === 'task-retried') && e.index === i,
    );
    let attempt = 1;
    for (let k = 0; k < own.length; k++) {
      const e = own[k] as (typeof own)[number];
      if (e.type === 'task-retried') {
        const before = own[k - 1];
        assert.ok(
          before?.type === 'task-failed' && before.willRetry,
          `task ${i}: task-retried without a task-failed before it`,
        );
        assert.equal(e.attempt, attempt + 1, `task ${i}: retried as attempt ${e.attempt}`);
        attempt = e.attempt;
        continue;
      }
      assert.equal(e.attempt, attempt, `task ${i}: ${e.type} of attempt ${e.attempt}, not ${attempt}`);
      if (e.type === 'task-failed' && e.willRetry)
        assert.equal(own[k + 1]?.type, 'task-retried', `task ${i}: no task-retried after a retry`);
    }
    const expected = i === FLAKY || i === ALWAYS || (crash && i === CRASH) ? 2 : 1;
    assert.equal(attempt, expected, `task ${i} ended on attempt ${attempt}`);
  }

  // The crash is told: worker-crashed naming the task (on each of its two attempts), then its
  // worker's worker-exited, before the task's end.
  const crashed = events.filter((e) => e.type === 'worker-crashed');
  assert.equal(crashed.length, crash ? 2 : 0, all);
  for (const e of crashed) {
    assert.ok(e.type === 'worker-crashed');
    assert.equal(e.index, CRASH);
    const at = events.indexOf(e);
    const exited = events.findIndex((x, k) => k > at && x.type === 'worker-exited' && x.worker === e.worker);
    assert.ok(exited > at, `worker-exited of ${e.worker} after its worker-crashed: ${all}`);
    assert.ok(at < (final.get(CRASH) as number), 'worker-crashed before the task ends');
  }
  // A worker that exited is not told to exit again, nor to start again under the same name.
  const exits = events.filter((e) => e.type === 'worker-exited').map((e) => e.worker);
  assert.equal(new Set(exits).size, exits.length, `a worker exited twice: ${all}`);
  const starts = events.filter((e) => e.type === 'worker-started').map((e) => e.worker);
  assert.equal(new Set(starts).size, starts.length, `a worker started twice: ${all}`);

  const end = events.at(-1);
  assert.ok(end?.type === 'run-end');
  assert.deepEqual([end.status, end.completed, end.failed], ['done', COUNT, failing.length]);
}
