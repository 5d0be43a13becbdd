/**
 * At-least-once with no lost task: a worker SIGKILLed mid-run has its jobs picked up by another, and the
 * call still returns every result once, in order. The workers run with a short lock and stalled-check
 * interval so that the recovery takes about a second here (the defaults give at most ~8 s).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { delayed, Parallel } from '../../../src/index.ts';
import '../../../src/backends/redis/index.ts';
import { repoRoot, tempDir } from '../../helpers.ts';
import { slowIndex } from './fixtures/tasks.ts';
import {
  callKeysLeft,
  keysWith,
  REDIS_URL,
  redis,
  redisSkipReason,
  removeQueue,
  startWorkers,
  stopAllWorkers,
  uniquePrefix,
} from './helpers.ts';

const skip = await redisSkipReason();

describe('redis backend: a worker killed mid-run', { skip }, () => {
  const prefix = uniquePrefix();
  const queue = 'crash';

  after(async () => {
    await stopAllWorkers();
    await removeQueue(prefix, queue);
  });

  test('kill one of three workers with SIGKILL: every result arrives once, in order', async () => {
    const workers = await startWorkers({
      prefix,
      queue,
      count: 3,
      concurrency: 1,
      extraArgs: ['--lock-ms', '1000', '--stalled-ms', '500'],
    });
    const victim = workers[0] as (typeof workers)[number];
    const parallel = new Parallel({
      nJobs: 3,
      backend: 'redis',
      batchSize: 1,
      verbose: Number(process.env.VERBOSE ?? 0),
      backendOptions: { connection: REDIS_URL, prefix, queue, root: repoRoot, reconcileMs: 500 },
    });
    const count = 36;
    const started = performance.now();
    const log = join(tempDir(), 'started.txt');
    writeFileSync(log, '');
    const run = parallel.run(Array.from({ length: count }, (_, i) => delayed(slowIndex)(i, 150, log)));
    // Once the victim has started tasks (it holds one running and one prefetched), kill it.
    const deadline = Date.now() + 10_000;
    while (!readFileSync(log, 'utf8').split('\n').includes(String(victim.pid)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    victim.child.kill('SIGKILL');
    const killedAt = performance.now();
    const results = await run;
    const seconds = (performance.now() - started) / 1000;
    const afterKill = (performance.now() - killedAt) / 1000;
    assert.equal(results.length, count);
    for (const [i, result] of results.entries())
      assert.equal(result.index, i, `result ${i} is task ${result.index}`);
    const byWorker = new Map<number, number>();
    for (const r of results) byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + 1);
    assert.ok(byWorker.size >= 2, 'the other workers ran the tasks');
    // 36 tasks of 150 ms on 3 then 2 workers: ~2 s of work, plus the recovery of the victim's jobs.
    assert.ok(
      afterKill < 6,
      `the run ended ${afterKill.toFixed(1)} s after the kill (${seconds.toFixed(1)} s in all)`,
    );
    assert.equal((await victim.exited).signal, 'SIGKILL');
    await parallel.close();
    // The killed worker's jobs were re-run elsewhere and removed; the call left nothing.
    assert.deepEqual(await callKeysLeft(prefix, queue), []);
    await stopAllWorkers();
    // The killed worker could not unregister: its registration expires by itself (6 s); drop it now.
    const registry = `${prefix}:${queue}:jt:workers`;
    for (const id of await redis().smembers(registry)) await redis().del(`${prefix}:${queue}:jt:w:${id}`);
    await redis().del(registry);
    await removeQueue(prefix, queue);
    assert.deepEqual(await keysWith(`${prefix}*`), []);
  });
});
