/**
 * Workers start as batches need them (issue 14, item 2): counted through the backend's
 * `workersStarted`, never timed (bench/startup.ts has the timings).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { withoutTsxLoader } from '../../src/backends/worker-launch.ts';
import { delayed, Parallel } from '../../src/index.ts';
import { square } from '../fixtures/tasks.ts';
import { rendezvous } from '../fixtures/worker-life-tasks.ts';
import { tempDir } from '../helpers.ts';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Workers the pool behind `parallel` has started (the backend is private: read through a cast). */
function workersStarted(parallel: Parallel): number {
  return (parallel as unknown as { backend: { workersStarted: number } }).backend.workersStarted;
}

for (const backend of ['threads', 'processes'] as const) {
  describe(`starting workers on ${backend}`, () => {
    test('nJobs: 1000 with 10 tasks starts at most 10 workers', async () => {
      const parallel = new Parallel({ nJobs: 1000, backend });
      try {
        assert.deepEqual(
          await parallel.run(range(10).map((i) => delayed(square)(i))),
          range(10).map((i) => i * i),
        );
        const started = workersStarted(parallel);
        assert.ok(started >= 1 && started <= 10, `${started} workers started`);
      } finally {
        await parallel.close();
      }
    });

    test('nJobs: 8 with one task starts one worker', async () => {
      const parallel = new Parallel({ nJobs: 8, backend });
      try {
        assert.deepEqual(await parallel.run([delayed(square)(7)]), [49]);
        assert.equal(workersStarted(parallel), 1);
        // A second run of one task reuses it.
        assert.deepEqual(await parallel.run([delayed(square)(8)]), [64]);
        assert.equal(workersStarted(parallel), 1);
      } finally {
        await parallel.close();
      }
    });

    test('tasks that must run together still get nJobs workers, a few started at a time', async () => {
      // More workers than this machine has CPUs (they start at most cpuCount() at a time), and each
      // task returns only once all 4 are running at the same time.
      const file = join(tempDir(), 'signed-in');
      writeFileSync(file, '');
      const parallel = new Parallel({ nJobs: 4, backend, batchSize: 1 });
      try {
        assert.deepEqual(await parallel.run(range(4).map(() => delayed(rendezvous)(file, 4))), [4, 4, 4, 4]);
        assert.equal(workersStarted(parallel), 4);
      } finally {
        await parallel.close();
      }
    });
  });
}

describe('tsx loader flags', () => {
  test('are taken out of what a worker inherits, in every spelling, and nothing else is', () => {
    const tsx = '/home/u/app/node_modules/tsx';
    assert.deepEqual(
      withoutTsxLoader([
        '--require',
        `${tsx}/dist/preflight.cjs`,
        '--import',
        `file://${tsx}/dist/loader.mjs`,
        '--expose-gc',
        '--import=tsx',
        '--import',
        'tsx/esm',
        '-r',
        'tsx/cjs',
        '--loader=tsx',
        '--import',
        './my-hooks.mjs',
        '--conditions=dev',
      ]),
      ['--expose-gc', '--import', './my-hooks.mjs', '--conditions=dev'],
    );
    assert.deepEqual(withoutTsxLoader(['--enable-source-maps']), ['--enable-source-maps']);
  });
});
