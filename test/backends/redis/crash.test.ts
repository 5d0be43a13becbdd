/**
 * At-least-once with no lost task: a worker SIGKILLed mid-run has its jobs picked up by another, and the
 * call still returns every result once, in order. The workers run with a short lock and stalled-check
 * interval so that the recovery is quick here (the defaults give at most ~8 s); how quick is a
 * benchmark's question, not this test's.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { delayed } from '../../../src/index.ts';
import { tempDir, until } from '../../helpers.ts';
import { slowIndex } from './fixtures/tasks.ts';
import { callKeysLeft, redis, redisSkipReason, redisTest } from './helpers.ts';

const skip = await redisSkipReason();

describe('redis backend: a worker killed mid-run', { skip }, () => {
  redisTest('kill one of three workers with SIGKILL: every result arrives once, in order', async (scope) => {
    const workers = await scope.startWorkers({
      count: 3,
      concurrency: 1,
      extraArgs: ['--lock-ms', '1000', '--stalled-ms', '500'],
    });
    const victim = workers[0] as (typeof workers)[number];
    const parallel = scope.parallel(
      { nJobs: 3, batchSize: 1, verbose: Number(process.env.VERBOSE ?? 0) },
      { reconcileMs: 500 },
    );
    const count = 36;
    const log = join(tempDir(), 'started.txt');
    writeFileSync(log, '');
    const run = parallel.run(Array.from({ length: count }, (_, i) => delayed(slowIndex)(i, 150, log)));
    // Once the victim has started tasks (it holds one running and one prefetched), kill it.
    await until(() => readFileSync(log, 'utf8').split('\n').includes(String(victim.pid)));
    victim.child.kill('SIGKILL');
    const results = await run;
    assert.equal(results.length, count);
    for (const [i, result] of results.entries())
      assert.equal(result.index, i, `result ${i} is task ${result.index}`);
    const byWorker = new Map<number, number>();
    for (const r of results) byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + 1);
    assert.ok(byWorker.size >= 2, 'the other workers ran the tasks');
    assert.equal((await victim.exited).signal, 'SIGKILL');
    // The killed worker's jobs were re-run elsewhere and removed; the call left nothing.
    assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), []);
    // The killed worker could not unregister: its registration expires by itself (6 s); drop it now,
    // so that the scope's check for leaked keys sees only what the backend and live workers left.
    // A worker's id is `host-pid-random`.
    const registry = `${scope.prefix}:${scope.queue}:jt:workers`;
    for (const id of await redis().smembers(registry)) {
      if (!id.includes(`-${victim.pid}-`)) continue;
      await redis().del(`${scope.prefix}:${scope.queue}:jt:w:${id}`);
      await redis().srem(registry, id);
    }
  });
});
