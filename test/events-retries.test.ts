/**
 * Issue 16's onEvent test with failures, retries and a crash (with issue 15's errorMode 'settled' and
 * retries): on threads and processes the stream of a run is complete and validly ordered.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { delayed, type JoblibEvent, Parallel } from '../src/index.ts';
import { exitsAt, failsAt, failsThenWorks } from './fixtures/context-tasks.ts';

const opened: Parallel<'array', 'settled'>[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(opened.map((p) => p.close()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Task indices of the run below. */
const OK = [0, 1, 3, 5, 6, 7];
const FLAKY = 2; // throws on its first run, then succeeds
const ALWAYS = 4; // throws on every run
const CRASH = 8; // ends its worker on every run

describe('onEvent with errorMode settled, retries and a crash', () => {
  for (const backend of ['threads', 'processes'] as const) {
    test(`${backend}: a complete, validly ordered stream`, { timeout: 120_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'joblib-events-retries-'));
      dirs.push(dir);
      const events: JoblibEvent[] = [];
      const p = new Parallel({
        backend,
        nJobs: 2,
        batchSize: 2,
        errorMode: 'settled',
        retries: 1,
        onEvent: (event) => events.push(event),
      });
      opened.push(p);
      const tasks = Array.from({ length: 9 }, (_, i) => {
        if (i === FLAKY) return delayed(failsThenWorks)(dir, i, 1);
        if (i === ALWAYS) return delayed(failsAt)(i, i);
        if (i === CRASH) return delayed(exitsAt)(i, i);
        return delayed(failsAt)(i, -1);
      });
      const entries = await p.run(tasks);

      // The results: the flaky task succeeded on its retry, and its task context said so.
      for (const i of OK) assert.deepEqual(entries[i], { status: 'fulfilled', value: i });
      assert.deepEqual(entries[FLAKY], { status: 'fulfilled', value: { run: 2, attempt: 2 } });
      assert.equal(entries[ALWAYS]?.status, 'rejected');
      assert.equal(entries[CRASH]?.status, 'rejected');

      const types = events.map((e) => e.type);
      // run-start first, run-end last, once each; every event of this run.
      assert.equal(types[0], 'run-start', types.join(' '));
      assert.equal(types.at(-1), 'run-end', types.join(' '));
      assert.equal(types.filter((t) => t === 'run-start' || t === 'run-end').length, 2);
      const runId = events[0]?.runId;
      assert.ok(events.every((e) => e.runId === runId));

      // Each index ends exactly once: one task-done, or one task-failed that is not retried; nothing of
      // it comes after that.
      const final = new Map<number, number>();
      events.forEach((e, at) => {
        if (e.type !== 'task-done' && !(e.type === 'task-failed' && !e.willRetry)) return;
        assert.ok(!final.has(e.index), `task ${e.index} ended twice: ${types.join(' ')}`);
        final.set(e.index, at);
      });
      assert.deepEqual(
        [...final.keys()].sort((a, b) => a - b),
        Array.from({ length: 9 }, (_, i) => i),
      );
      for (const e of events) {
        if (!('index' in e) || e.index === undefined || e.type === 'worker-crashed') continue;
        const end = final.get(e.index) as number;
        assert.ok(events.indexOf(e) <= end, `a ${e.type} of task ${e.index} after its end`);
      }
      const endOf = (i: number) => events[final.get(i) as number];
      for (const i of [...OK, FLAKY]) assert.equal(endOf(i)?.type, 'task-done', `task ${i}`);
      for (const i of [ALWAYS, CRASH]) assert.equal(endOf(i)?.type, 'task-failed', `task ${i}`);

      // Attempts: each index's attempts go up by one; a task-failed with willRetry is followed (for
      // its index) by a task-retried of the next attempt, and that attempt is the next event's.
      for (let i = 0; i < 9; i++) {
        const own = events.filter(
          (e): e is Extract<JoblibEvent, { index: number }> =>
            (e.type === 'task-done' || e.type === 'task-failed' || e.type === 'task-retried') &&
            e.index === i,
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
          assert.ok('attempt' in e && e.attempt === attempt, `task ${i}: ${e.type} of attempt ${attempt}`);
          if (e.type === 'task-failed' && e.willRetry)
            assert.equal(own[k + 1]?.type, 'task-retried', `task ${i}: no task-retried after a retry`);
        }
        const expected = i === FLAKY || i === ALWAYS || i === CRASH ? 2 : 1;
        assert.equal(attempt, expected, `task ${i} ended on attempt ${attempt}`);
      }

      // The crash is told: worker-crashed naming the task (on each of its two attempts), then its
      // worker-exited, before the task's failure.
      const crashed = events.filter((e) => e.type === 'worker-crashed');
      assert.equal(crashed.length, 2, types.join(' '));
      for (const e of crashed) {
        assert.ok(e.type === 'worker-crashed');
        assert.equal(e.index, CRASH);
        const at = events.indexOf(e);
        const exited = events.findIndex(
          (x, k) => k > at && x.type === 'worker-exited' && x.worker === e.worker,
        );
        assert.ok(exited > at, 'worker-exited after worker-crashed');
      }
      assert.ok(events.indexOf(crashed.at(-1) as JoblibEvent) < (final.get(CRASH) as number));

      const end = events.at(-1);
      assert.ok(end?.type === 'run-end');
      assert.deepEqual([end.status, end.completed, end.failed], ['done', 9, 2]);
    });
  }
});
