/**
 * One worker budget per backend (issue 18, item 3): concurrent runs of different sizes share one pool,
 * which grows to the largest live nJobs and shrinks back, and each run uses at most its own nJobs
 * workers at once. Counts of live workers (the pool's own, and the OS's: worker threads not yet exited,
 * child processes in /proc), never timings. Sizes stay small (nJobs up to 5): every worker started
 * from source costs about a second of CPU on a 2-core machine, and the invariants do not need more.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { liveWorkerThreadCount } from '../../src/backends/threads.ts';
import { WorkerBudget } from '../../src/backends/worker-budget.ts';
import { delayed, Parallel } from '../../src/index.ts';
import { holdUntil, type Occupied, occupy } from '../fixtures/budget-tasks.ts';
import { childProcesses } from '../fixtures/census.ts';
import { openLatch } from '../fixtures/latches.ts';
import { square } from '../fixtures/tasks.ts';
import { rendezvous } from '../fixtures/worker-life-tasks.ts';
import { tempDir, until } from '../helpers.ts';

interface PoolView {
  readonly workerCount: number;
  readonly targetSize: number;
}

/** The shared pool behind `parallel` (private: read through a cast), while it has one. */
function poolOf(parallel: Parallel): PoolView | undefined {
  return (parallel as unknown as { backend?: { shared?: { pool: PoolView } } }).backend?.shared?.pool;
}

/** Largest number of intervals that overlap: how many workers ran the run's tasks at once. */
function maxOverlap(tasks: readonly Occupied[]): number {
  const edges = tasks.flatMap((t) => [
    [t.start, 1],
    [t.end, -1],
  ]) as [number, number][];
  // At equal times an end comes first: back-to-back tasks on one worker do not overlap.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, delta] of edges) {
    now += delta;
    most = Math.max(most, now);
  }
  return most;
}

for (const backend of ['threads', 'processes'] as const) {
  /** Workers alive as the OS sees them: ones being stopped count until they have exited. */
  const liveWorkers = backend === 'threads' ? liveWorkerThreadCount : () => childProcesses(true);

  /** Samples live workers (the OS's count and every pool's) every few ms until stopped. */
  function sampleWorkers(parallels: readonly Parallel[]): { stop(): number } {
    let peak = 0;
    const sample = () => {
      peak = Math.max(peak, liveWorkers());
      for (const parallel of parallels) peak = Math.max(peak, poolOf(parallel)?.workerCount ?? 0);
    };
    const timer = setInterval(sample, 5);
    return {
      stop() {
        clearInterval(timer);
        sample();
        return peak;
      },
    };
  }

  /** Runs one nJobs-2 run, then waits until the pool (and the OS) have at most 2 workers left. */
  async function shrinksToTwo(): Promise<void> {
    const small = new Parallel({ nJobs: 2, backend });
    try {
      assert.deepEqual(await small.run([delayed(square)(3), delayed(square)(4)]), [9, 16]);
      const pool = poolOf(small);
      assert.ok(pool);
      assert.equal(pool.targetSize, 2);
      await until(() => pool.workerCount <= 2 && liveWorkers() <= 2);
    } finally {
      await small.close();
    }
  }

  describe(`one worker budget on ${backend}`, () => {
    test('200 concurrent runs with nJobs 2..5 all give their results, with at most 5 workers alive', async () => {
      const parallels = Array.from({ length: 200 }, (_, r) => new Parallel({ nJobs: 2 + (r % 4), backend }));
      const sampler = sampleWorkers(parallels);
      try {
        const results = await Promise.all(
          parallels.map((p, r) => p.run(Array.from({ length: 10 }, (_, i) => delayed(square)(r + i)))),
        );
        const peak = sampler.stop();
        results.forEach((result, r) => {
          assert.deepEqual(
            result,
            Array.from({ length: 10 }, (_, i) => (r + i) ** 2),
          );
        });
        assert.ok(peak >= 1 && peak <= 5, `${peak} workers alive at once`);
        // One pool served them all.
        const pools = new Set(parallels.map(poolOf));
        assert.equal(pools.size, 1);
        // After they end, a run of 2 shrinks it back to 2.
        await shrinksToTwo();
      } finally {
        sampler.stop();
        await Promise.all(parallels.map((p) => p.close()));
      }
      await until(() => liveWorkers() === 0);
    });

    test('a run with nJobs 2 next to one with nJobs 5 runs on at most 2 workers at once', async () => {
      const two = new Parallel({ nJobs: 2, backend, batchSize: 1 });
      const five = new Parallel({ nJobs: 5, backend, batchSize: 1 });
      // The nJobs-5 run's 3 tasks return only once all 3 run at the same time: the pool must grow
      // beyond 2 for it while the nJobs-2 run goes on (to 5: 2 for that run, 3 for this one).
      const signIn = join(tempDir(), 'signed-in');
      writeFileSync(signIn, '');
      const sampler = sampleWorkers([two, five]);
      try {
        const [small, large] = await Promise.all([
          two.run(Array.from({ length: 12 }, () => delayed(occupy)(50))),
          five.run(Array.from({ length: 3 }, () => delayed(rendezvous)(signIn, 3))),
        ]);
        const peak = sampler.stop();
        assert.deepEqual(large, [3, 3, 3]);
        assert.ok(maxOverlap(small) <= 2, `the nJobs-2 run ran on ${maxOverlap(small)} workers at once`);
        assert.ok(peak >= 3 && peak <= 5, `${peak} workers alive at once`);
        assert.equal(poolOf(two), poolOf(five));
        await shrinksToTwo();
      } finally {
        sampler.stop();
        await Promise.all([two.close(), five.close()]);
      }
      await until(() => liveWorkers() === 0);
    });

    test('workers beyond what the live runs ask for stop once idle, while a smaller run goes on', async () => {
      const small = new Parallel({ nJobs: 2, backend, batchSize: 1 });
      const large = new Parallel({ nJobs: 5, backend, batchSize: 1 });
      const dir = tempDir();
      const latch = join(dir, 'release');
      const largeLatch = join(dir, 'release-large');
      try {
        // The small run holds 2 workers until its latch opens; the large one holds 3 more at once
        // (under its target of 5 a batch never waits behind another: each gets a worker of its own).
        const held = small.run([delayed(holdUntil)(latch), delayed(holdUntil)(latch)]);
        held.catch(() => {});
        const largeRun = large.run(Array.from({ length: 3 }, () => delayed(holdUntil)(largeLatch)));
        largeRun.catch(() => {});
        await until(() => (poolOf(large)?.workerCount ?? 0) >= 5);
        openLatch(largeLatch);
        assert.equal(new Set(await largeRun).size, 3);
        const pool = poolOf(small);
        assert.ok(pool && pool === poolOf(large));
        assert.equal(pool.targetSize, 2);
        // The 3 idle workers stop (a second later); the small run's 2 go on.
        await until(() => pool.workerCount <= 2 && liveWorkers() <= 2);
        openLatch(latch);
        assert.equal(new Set(await held).size, 2);
      } finally {
        openLatch(latch);
        openLatch(largeLatch);
        await Promise.all([small.close(), large.close()]);
      }
      await until(() => liveWorkers() === 0);
    });

    test('a Parallel closed while another of another size runs: both its runs finish, and no worker is left', {
      timeout: 120_000,
    }, async () => {
      const other = new Parallel({ nJobs: 2, backend });
      const parallel = new Parallel({ nJobs: 3, backend });
      const first = parallel.run(Array.from({ length: 6 }, () => delayed(occupy)(100)));
      assert.deepEqual(await other.run([delayed(square)(2)]), [4]);
      // Retires the pool they share; `first` goes on in it, while a second run gets a new pool.
      await other.close();
      const second = parallel.run([delayed(square)(5), delayed(square)(6)]);
      assert.equal((await first).length, 6);
      assert.deepEqual(await second, [25, 36]);
      await parallel.close();
      // The retired pool closed once `first` ended (else its workers would stay, and this would hang).
      await until(() => liveWorkers() === 0);
    });
  });
}

describe('WorkerBudget', () => {
  test('the target is the largest live demand; with none live, the last one to end', () => {
    const budget = new WorkerBudget(4);
    assert.equal(budget.target, 4);
    budget.add(1, 2);
    assert.equal(budget.target, 2);
    budget.add(2, 8);
    budget.add(3, 3);
    assert.equal(budget.target, 8);
    assert.equal(budget.limitOf(1), 2);
    assert.equal(budget.limitOf(99), 8);
    assert.equal(budget.remove(2), true);
    assert.equal(budget.target, 3);
    assert.equal(budget.remove(3), true);
    assert.equal(budget.remove(1), false);
    assert.equal(budget.target, 2);
    assert.equal(budget.remove(1), false);
  });

  test('a bad size or nJobs is refused, naming it', () => {
    assert.throws(() => new WorkerBudget(0), /the pool size must be a positive integer; got 0/);
    const budget = new WorkerBudget(2);
    assert.throws(() => budget.add(7, 1.5), /nJobs of run 7 must be a positive integer; got 1.5/);
    assert.throws(() => budget.add(7, Number.NaN), /nJobs of run 7 must be a positive integer; got NaN/);
  });
});
