/**
 * Issue 16 on the `redis` backend: the same seeded draws as the local backends, the initializer once per
 * worker process, and the tasks' output and reports delivered as events before their results.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { sfc32, taskSeed } from '../../../src/context/prng.ts';
import { delayed, type JoblibEvent } from '../../../src/index.ts';
import {
  chatty,
  draws,
  failingSetup,
  failsAt,
  readSetup,
  reporting,
  slowSetup,
} from '../../fixtures/context-tasks.ts';
import { redisSkipReason, redisTest, sharedWorkers } from './helpers.ts';

const skip = await redisSkipReason();
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('taskContext, initializer, logs and events on redis (two worker processes)', { skip }, () => {
  // Two workers of one slot each, for the initializer test (the first to use them, so each of their
  // processes is new to it), the logs test and the draws test.
  const shared = skip ? undefined : sharedWorkers({ count: 2, concurrency: 1 });
  redisTest(
    'the initializer runs once per worker process, and a failing one fails the run once',
    async (scope) => {
      await scope.sharedWorkers();
      const p = scope.parallel({ nJobs: 2, batchSize: 1, initializer: delayed(slowSetup)('redis') });
      const counts = new Map<string, Set<number>>();
      for (let run = 0; run < 2; run++) {
        const results = await p.run(range(20).map((i) => delayed(readSetup)(i)));
        results.forEach((result, i) => {
          assert.equal(result.index, i);
          assert.equal(result.setup.tag, 'redis');
          const seen = counts.get(result.setup.worker) ?? new Set();
          seen.add(result.setup.count);
          counts.set(result.setup.worker, seen);
        });
      }
      assert.ok(counts.size >= 1 && counts.size <= 2, `${counts.size} workers`);
      for (const [worker, seen] of counts)
        assert.deepEqual([...seen], [1], `${worker} ran it ${[...seen]} times`);

      const events: JoblibEvent[] = [];
      const failing = scope.parallel({
        nJobs: 2,
        batchSize: 1,
        initializer: delayed(failingSetup)(),
        onEvent: (event) => events.push(event),
      });
      let failures = 0;
      await failing.run(range(10).map((i) => delayed(readSetup)(i))).catch((error: unknown) => {
        failures++;
        assert.ok(error instanceof RangeError, String(error));
        assert.equal((error as Error).message, 'the setup failed');
      });
      assert.equal(failures, 1);
      assert.equal(events.filter((e) => e.type === 'task-done').length, 0);
    },
    { shared },
  );

  redisTest(
    'logs and reports arrive tagged with their task, before its result; run-start and run-end frame the run',
    async (scope) => {
      await scope.sharedWorkers();
      const events: JoblibEvent[] = [];
      const p = scope.parallel({ nJobs: 2, logs: 'silent', onEvent: (event) => events.push(event) });
      assert.deepEqual(await p.run(range(100).map((i) => delayed(chatty)(i))), range(100));
      for (const i of range(100)) {
        const mine = events.filter((e) => 'index' in e && e.index === i);
        assert.deepEqual(
          mine.map((e) => (e.type === 'log' ? `${e.stream} ${e.line}` : e.type)),
          [
            `stdout first line of ${i}`,
            `stderr error line of ${i}`,
            `stdout second line of ${i}`,
            `stdout unfinished ${i}`,
            'task-done',
          ],
        );
      }
      assert.equal(events[0]?.type, 'run-start');
      assert.equal(events.at(-1)?.type, 'run-end');

      events.length = 0;
      await p.run(range(10).map((i) => delayed(reporting)(i)));
      for (const i of range(10)) {
        const mine = events.filter((e) => 'index' in e && e.index === i).map((e) => e.type);
        assert.deepEqual(mine, ['report', 'report', 'task-done']);
      }

      events.length = 0;
      await assert.rejects(p.run(range(10).map((i) => delayed(failsAt)(i, 4))), /task 4 fails/);
      const end = events.at(-1);
      assert.ok(end?.type === 'run-end' && end.status === 'failed');
      assert.ok(!events.some((e) => e.type === 'task-done' && e.index === 4));
    },
    { shared },
  );

  // Last: it needs no process new to it, and runs on the shared workers too (their own workers, with a
  // slot more each, were 6 more processes started from source; nJobs 8 exceeds the slots either way).
  redisTest(
    "200 tasks give the sfc32 draws of their seed with nJobs 1, 2, 8 and batch sizes 1 and 'auto'",
    async (scope) => {
      await scope.sharedWorkers();
      const reference = range(200).map((i) => {
        const seed = taskSeed(42, i);
        const random = sfc32(seed);
        return [i, seed, random(), random(), random()];
      });
      for (const nJobs of [1, 2, 8]) {
        for (const batchSize of [1, 'auto'] as const) {
          const p = scope.parallel({ nJobs, batchSize, seed: 42 }, { workerWaitMs: 10_000 });
          const results = await p.run(range(200).map(() => delayed(draws)(3)));
          assert.deepEqual(results, reference, `nJobs ${nJobs}, batchSize ${batchSize}`);
        }
      }
    },
    { shared },
  );
});
