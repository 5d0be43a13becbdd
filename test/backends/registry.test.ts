import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SequentialBackend } from '../../src/backends/sequential.ts';
import {
  type BackendConfig,
  delayed,
  InvalidArgumentError,
  Parallel,
  type ParallelBackend,
  registerParallelBackend,
} from '../../src/index.ts';
import { square } from '../fixtures/tasks.ts';

describe('the backend registry', () => {
  test('a user backend is made by its factory with the resolved configuration and runs the tasks', async () => {
    const configs: BackendConfig[] = [];
    let batches = 0;
    registerParallelBackend('counting-test', (config) => {
      configs.push(config);
      const inner = new SequentialBackend();
      const backend: ParallelBackend = {
        name: 'CountingBackend',
        concurrency: config.nJobs,
        inProcess: true,
        runBatch: (batch) => {
          batches++;
          return inner.runBatch(batch);
        },
        cancelRun: (runId) => inner.cancelRun(runId),
        close: () => inner.close(),
      };
      return backend;
    });
    const parallel = new Parallel({
      backend: 'counting-test',
      nJobs: 3,
      maxNbytes: '2K',
      backendOptions: { answer: 42 },
    });
    const out = await parallel.run([1, 2, 3, 4].map((x) => delayed(square)(x)));
    await parallel.close();
    assert.deepEqual(out, [1, 4, 9, 16]);
    assert.ok(batches >= 1);
    assert.deepEqual(configs, [{ nJobs: 3, maxNbytes: 2048, recycling: {}, options: { answer: 42 } }]);
  });

  test('an unknown backend is refused up front, listing the built-in and registered names', () => {
    assert.throws(
      () => new Parallel({ backend: 'threds' }),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        /backend must be one of 'threads', 'processes', 'sequential', 'redis'/.test(error.message) &&
        /"threds"/.test(error.message),
    );
  });

  test("'redis' is known without importing joblib-ts/redis (its module loads on first use)", () => {
    assert.doesNotThrow(() => new Parallel({ backend: 'redis', nJobs: 2 }));
  });

  test('a factory that is not a function is refused', () => {
    assert.throws(
      () => registerParallelBackend('bad', 42 as never),
      /factory must be a function returning a ParallelBackend/,
    );
  });
});
