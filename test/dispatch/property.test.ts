/**
 * Random task lists with random failures, delays and aborts, on both worker backends: results come
 * back in order when all succeed, the failure that surfaces is the first one its worker reported, every
 * started task is accounted for, and nothing (worker, timer, handle) is left behind.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { delayed, Parallel } from '../../src/index.ts';
import { scripted } from '../fixtures/failing-tasks.ts';
import { tempDir, until } from '../helpers.ts';

interface Event {
  kind: 'start' | 'end' | 'fail';
  index: number;
  /** `pid/threadId` of the worker that ran it. */
  worker: string;
}

function readLog(file: string): Event[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, index, worker] = line.split(' ');
      return { kind: kind as Event['kind'], index: Number(index), worker: worker ?? '' };
    });
}

const activeResources = () => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');

const scenario = fc.record({
  tasks: fc.array(
    fc.record({
      ms: fc.integer({ min: 0, max: 25 }),
      fail: fc.integer({ min: 0, max: 99 }).map((n) => n < 15),
    }),
    {
      minLength: 0,
      maxLength: 14,
    },
  ),
  abortAfterMs: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
  batchSize: fc.constantFrom<'auto' | number>('auto', 1, 3),
});

for (const backend of ['threads', 'processes'] as const) {
  test(`random runs on ${backend} keep every promise`, { timeout: 180_000 }, async () => {
    const dir = tempDir('joblib-ts-property-');
    const before = activeResources().length;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ tasks, abortAfterMs, batchSize }) => {
        const log = join(dir, `run-${run++}.log`);
        writeFileSync(log, '');
        const p = new Parallel({ nJobs: 2, backend, batchSize });
        const controller = new AbortController();
        const timer =
          abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), abortAfterMs);
        let outcome: { ok: true; values: number[] } | { ok: false; error: unknown };
        try {
          const values = await p.run(
            tasks.map((t, i) => delayed(scripted)(log, i, t.ms, t.fail)),
            { signal: controller.signal },
          );
          outcome = { ok: true, values };
        } catch (error) {
          outcome = { ok: false, error };
        }
        clearTimeout(timer);
        await p.close();
        const events = readLog(log);
        const started = new Set(events.filter((e) => e.kind === 'start').map((e) => e.index));
        const failures = events.filter((e) => e.kind === 'fail');
        for (const index of started) assert.ok(index < tasks.length, `task ${index} does not exist`);
        // Every started task finished, or was the one task its worker held when the run was stopped.
        const finished = new Set(events.filter((e) => e.kind !== 'start').map((e) => e.index));
        const unfinished = [...started].filter((i) => !finished.has(i));
        assert.ok(unfinished.length <= 2, `tasks ${unfinished.join(',')} started and vanished`);
        if (outcome.ok) {
          assert.deepEqual(
            outcome.values,
            tasks.map((_, i) => i * 10),
          );
          assert.equal(failures.length, 0);
          assert.equal(started.size, tasks.length, 'every task ran exactly once');
          return;
        }
        const error = outcome.error as Error & { taskIndex?: number };
        if (error.name === 'AbortError') return;
        // A task failed: it must be a failing task that really ran, and no earlier failure on the same
        // worker was passed over (a worker's replies arrive in order; two workers' may cross).
        assert.match(error.message, /^scripted failure \d+$/);
        const surfaced = failures.findIndex((f) => f.index === error.taskIndex);
        assert.ok(surfaced >= 0, `task ${error.taskIndex} surfaced but never failed`);
        const worker = failures[surfaced]?.worker;
        const earlier = failures.slice(0, surfaced).filter((f) => f.worker === worker);
        assert.deepEqual(earlier, [], 'an earlier failure on the same worker was hidden');
      }),
      { numRuns: 25 },
    );
    // Every worker, timer and handle of those runs goes (handles close a turn or two after close()).
    await until(() => activeResources().length <= before);
  });
}
