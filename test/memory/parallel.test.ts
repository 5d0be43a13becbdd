import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { delayed, Parallel } from '../../src/index.ts';
import { tempDir } from '../helpers.ts';

const dir = tempDir('joblib-ts-cache-parallel-');
process.env.JOBLIB_TS_TEST_CACHE = dir;
writeFileSync(join(dir, 'calls.txt'), '');
const { cachedCube } = await import('../fixtures/cached-tasks.ts');

const calls = () =>
  readFileSync(join(dir, 'calls.txt'), 'utf8').trim().split('\n').filter(Boolean).map(Number);

for (const backend of ['threads', 'processes'] as const) {
  test(`a cached function runs in ${backend} workers on one shared cache`, async () => {
    const p = new Parallel({ nJobs: 2, backend, batchSize: 1 });
    try {
      const inputs = backend === 'threads' ? [1, 2, 3, 4] : [1, 2, 3, 4, 5, 6];
      const before = calls().length;
      const results = await p.run(inputs.map((x) => delayed(cachedCube)(x)));
      assert.deepEqual(
        results,
        inputs.map((x) => x ** 3),
      );
      // On threads all four are new; on processes only 5 and 6 are: 1..4 come from the threads' entries.
      const computed = calls().slice(before).sort();
      assert.deepEqual(computed, backend === 'threads' ? [1, 2, 3, 4] : [5, 6]);
      // A second run is all hits, wherever it runs.
      assert.deepEqual(await p.run(inputs.map((x) => delayed(cachedCube)(x))), results);
      assert.equal(calls().length, before + computed.length);
    } finally {
      await p.close();
    }
  });
}
