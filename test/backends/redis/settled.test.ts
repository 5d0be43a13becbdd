/**
 * Issue 15 on the Redis backend: settled results with a throw, a timeout and a crash; retries of a
 * flaky task; a batch of 100 where task 57 ends its worker process; the call leaves no key behind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { delayed, WorkerCrashedError } from '../../../src/index.ts';
import { exitAt, flaky, mixed } from '../../fixtures/settled-tasks.ts';
import { tempDir } from '../../helpers.ts';
import { checkMixedEntries, lazily, reasonOf } from '../../settled-checks.ts';
import { callKeysLeft, redisSkipReason, redisTest, sharedWorkers } from './helpers.ts';

const skip = await redisSkipReason();

describe('redis backend: settled results, retries, a crash that blames one task', { skip }, () => {
  // One worker of two slots for both tests: a Redis worker starts a local worker process per slot, and
  // one of its own per test started three processes more from source. The local processes that a test
  // crashes or times out are replaced by the worker's pool, as they would be for any caller.
  const shared = skip ? undefined : sharedWorkers({ count: 1, concurrency: 2 });
  redisTest(
    'settled: a throw, a timeout and a crash each in their own entry; retries: 2 on a flaky task',
    async (scope) => {
      await scope.sharedWorkers();
      const p = scope.parallel({ nJobs: 2, timeoutMs: 2000, batchSize: 3 });
      const kinds = ['ok', 'throw', 'ok', 'spin', 'ok', 'exit', 'ok'];
      // Settled for this run (the Parallel is fail-fast).
      const entries = await p.run(
        kinds.map((kind, i) => delayed(mixed)(i, kind)),
        { errorMode: 'settled' },
      );
      checkMixedEntries(kinds, entries);

      const dir = tempDir();
      const flakyRun = scope.parallel({ nJobs: 2, retries: 2 });
      assert.deepEqual(
        await flakyRun.run([0, 1, 2].map((i) => delayed(flaky)(dir, i, i === 1 ? 2 : 0))),
        [0, 1, 2],
      );
      assert.equal(readFileSync(join(dir, 'flaky-1'), 'utf8'), 'x\nx\nx\n');
      await assert.rejects(
        flakyRun.run([delayed(flaky)(dir, 9, 5)]),
        (error: Error & { attempts?: number }) => {
          assert.equal(error.attempts, 3);
          return true;
        },
      );
      assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), []);
    },
    { shared },
  );

  redisTest(
    'a batch of 100 where task 57 calls process.exit(): only task 57 fails, the others run once',
    async (scope) => {
      // Before the first await: tempDir's clean-up hook belongs to the test that is running when it is
      // made, and after awaiting the shared workers (started by the first test) that is the first test.
      const dir = tempDir();
      await scope.sharedWorkers();
      // nJobs 1: the whole batch goes to one slot, one local process, which task 57 ends.
      const p = scope.parallel({ nJobs: 1, batchSize: 100 });
      const tasks = Array.from({ length: 100 }, (_, i) => delayed(exitAt)(dir, i, 57));
      const entries = await p.run(lazily(tasks), { errorMode: 'settled' });
      assert.equal(entries.length, 100);
      const crash = reasonOf(entries[57]);
      assert.ok(crash instanceof WorkerCrashedError);
      assert.equal(crash.taskIndex, 57);
      assert.equal(entries.filter((e) => e.status === 'fulfilled').length, 99);
      const ran = readFileSync(join(dir, 'ran'), 'utf8').trim().split('\n').map(Number);
      assert.deepEqual(
        [...ran].sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 57),
      );
      assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), []);
    },
    { shared },
  );
});
