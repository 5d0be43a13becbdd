/**
 * The core suite's behaviour tests (order, types, errors, verbose, lazy input, refusals) on the
 * `redis` backend, with two worker processes started here and shared by the tests (one that stops a
 * worker starts its own); and after every run, no key of the call left.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { pathToFileURL } from 'node:url';
import { type RedisBackend, RedisBackendError } from '../../../src/backends/redis/index.ts';
import {
  delayed,
  type Parallel,
  type ParallelOptions,
  TaskImportError,
  TimeoutError,
  UnreachableFunctionError,
  UnsendableArgumentError,
} from '../../../src/index.ts';
import { negate } from '../../fixtures/cjs-tasks.cjs';
import { triple } from '../../fixtures/js-tasks.mjs';
import { openLatch } from '../../fixtures/latches.ts';
import {
  addTen,
  describeTypes,
  echo,
  failWhen,
  failWithCause,
  recordThenFail,
  returnsFunction,
  slowSquare,
  square,
  sumFloat64,
  ValidationError,
} from '../../fixtures/tasks.ts';
import { repoRoot, tempDir, until } from '../../helpers.ts';
import { slowIndex, total } from './fixtures/tasks.ts';
import {
  callKeysLeft,
  redisTest as ownQueueTest,
  type RedisScope,
  redisSkipReason,
  sharedWorkers,
  stopWorker,
} from './helpers.ts';

const skip = await redisSkipReason();
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('Parallel on redis (two worker processes)', { skip }, () => {
  // The suite's two workers, on a queue of its own: no test here kills or stops them.
  const shared = skip ? undefined : sharedWorkers({ count: 2, concurrency: 1 });
  const redisTest = (name: string, body: (scope: RedisScope) => Promise<void>) =>
    ownQueueTest(name, body, { shared });

  /** The suite's two workers, and a Parallel of nJobs 2 on their queue. */
  async function twoWorkers(
    scope: RedisScope,
    options: Omit<ParallelOptions<'array'>, 'backend'> = {},
  ): Promise<Parallel> {
    await scope.sharedWorkers();
    return scope.parallel({ nJobs: 2, ...options }, { workerWaitMs: 10_000 });
  }

  async function noCallKeys(scope: RedisScope): Promise<void> {
    assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), [], 'the call left keys in Redis');
  }

  redisTest('returns results in input order, for sync and async functions', async (scope) => {
    const parallel = await twoWorkers(scope);
    const squares = await parallel.run(range(20).map((i) => delayed(square)(i)));
    assert.deepEqual(
      squares,
      range(20).map((i) => i * i),
    );
    const slow = await parallel.run([60, 5, 40, 1].map((ms, i) => delayed(slowSquare)(i, ms)));
    assert.deepEqual(slow, [0, 1, 4, 9]);
    await noCallKeys(scope);
  });

  redisTest("effective concurrency is the live workers' total", async (scope) => {
    const parallel = await twoWorkers(scope);
    await parallel.run([delayed(square)(1)]); // the backend is made by the first run
    const backend = (parallel as unknown as { backend: RedisBackend }).backend;
    const live = await backend.liveWorkers();
    assert.equal(live.workers.length, 2);
    assert.equal(backend.concurrency, 2);
  });

  redisTest('reaches built-ins, TypeScript, JavaScript, CommonJS and factory-made exports', async (scope) => {
    const parallel = await twoWorkers(scope);
    const { helpers } = (await import('../../fixtures/cjs-tasks.cjs')) as {
      helpers: { half(x: number): number };
    };
    const results = await parallel.run([
      delayed(Math.pow)(2, 10),
      delayed(square)(7),
      delayed(triple)(5),
      delayed(negate)(4),
      delayed(helpers.half)(9),
      delayed(addTen)(1),
    ]);
    assert.deepEqual(results, [1024, 49, 15, -4, 4.5, 11]);
    await noCallKeys(scope);
  });

  redisTest('arguments and results keep their types', async (scope) => {
    const parallel = await twoWorkers(scope);
    const values = [new Map([['a', 1]]), new Set([1, 2]), new Date(0), new Float64Array([1, 2]), 10n, 'text'];
    const kinds = await parallel.run(values.map((v) => delayed(describeTypes)(v)));
    assert.deepEqual(kinds, ['Map(1)', 'Set(2)', 'Date', 'Float64Array', 'bigint', 'string']);
    const nested = {
      when: new Date(5),
      data: new Float64Array([0.5]),
      bytes: new Uint8Array([1, 2, 255]),
      tags: new Set(['x']),
      byKey: new Map<unknown, unknown>([[{ k: 1 }, [1n, undefined, null]]]),
      big: 2n ** 70n,
      small: 3n,
      large: 2 ** 40,
    };
    const [back] = await parallel.run([delayed(echo)(nested)]);
    assert.deepEqual(back, nested);
    assert.ok(back?.data instanceof Float64Array);
    assert.equal(typeof back?.small, 'bigint');
    assert.equal(typeof back?.large, 'number');
    const [sum] = await parallel.run([delayed(sumFloat64)(new Float64Array([1.5, 2.5]))]);
    assert.equal(sum, 4);
    await noCallKeys(scope);
  });

  redisTest('a large argument is stored once and shared by the tasks that use it', async (scope) => {
    const parallel = await twoWorkers(scope);
    const big = new Float64Array(200_000).fill(0.5); // 1.6 MB, over the 1 MB threshold
    const results = await parallel.run(range(8).map((i) => delayed(total)(big, i)));
    assert.deepEqual(
      results,
      range(8).map((i) => 100_000 * i),
    );
    await noCallKeys(scope);
  });

  redisTest('accepts generators and async iterables, read lazily', async (scope) => {
    const parallel = await twoWorkers(scope);
    function* tasks() {
      for (let i = 0; i < 10; i++) yield delayed(square)(i);
    }
    assert.deepEqual(
      await parallel.run(tasks()),
      range(10).map((i) => i * i),
    );
    async function* asyncTasks() {
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        yield delayed(square)(i);
      }
    }
    assert.deepEqual(await parallel.run(asyncTasks()), [0, 1, 4, 9, 16]);
    assert.deepEqual(await parallel.run([]), []);
    await noCallKeys(scope);
  });

  redisTest('refuses a closure, an unsendable argument and an unsendable result', async (scope) => {
    const parallel = await twoWorkers(scope);
    const offset = 10;
    const addOffset = (x: number) => x + offset;
    await assert.rejects(parallel.run([delayed(addOffset)(1)]), UnreachableFunctionError);
    await assert.rejects(parallel.run([delayed(echo)(1), delayed(echo)(() => 3)]), (error: unknown) => {
      assert.ok(error instanceof UnsendableArgumentError);
      assert.equal(error.taskIndex, 1);
      assert.equal(error.argumentIndex, 0);
      assert.match(error.message, /^Task 1 \(echo\): argument 0/);
      return true;
    });
    await assert.rejects(parallel.run([delayed(returnsFunction)()]), /cannot be sent back/);
    await noCallKeys(scope);
  });

  redisTest(
    'rethrows the first error with its class, message, fields, cause, remote stack, index, function and host',
    async (scope) => {
      const parallel = await twoWorkers(scope);
      await assert.rejects(parallel.run(range(6).map((i) => delayed(failWhen)(i, 4))), (error: unknown) => {
        assert.ok(error instanceof ValidationError, 'the real class, exported by the task module');
        assert.equal(error.message, 'value 4 is not allowed');
        assert.equal(error.code, 'E_BAD_VALUE');
        assert.deepEqual(error.details, { field: 'x' });
        const info = error as unknown as { taskIndex: number; functionName: string; host: string };
        assert.equal(info.taskIndex, 4);
        assert.equal(info.functionName, 'failWhen');
        assert.equal(typeof info.host, 'string');
        assert.ok(info.host.length > 0);
        const source = readFileSync(new URL('../../fixtures/tasks.ts', import.meta.url), 'utf8').split('\n');
        const line = source.findIndex((l) => l.includes('throw new ValidationError')) + 1;
        assert.match(error.stack ?? '', new RegExp(`fixtures/tasks\\.ts:${line}:`));
        return true;
      });
      await assert.rejects(parallel.run([delayed(failWithCause)(1)]), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.equal(error.message, 'outer failure for 1');
        assert.ok(error.cause instanceof RangeError);
        return true;
      });
      await noCallKeys(scope);
    },
  );

  redisTest(
    'starts no further tasks after an error, removes the waiting jobs, and stays usable',
    async (scope) => {
      const p = await twoWorkers(scope, { batchSize: 1 });
      const dir = tempDir();
      const log = join(dir, 'started.txt');
      writeFileSync(log, '');
      // Task 0 (the first job any worker takes) fails; every other task waits for this latch, opened once
      // the run has failed: until then no task completes, so no job beyond the first window is queued.
      const gate = join(dir, 'gate');
      await assert.rejects(
        p.run(range(40).map((i) => delayed(recordThenFail)(log, i, 0, gate))),
        /task 0 failed on purpose/,
      );
      openLatch(gate);
      // Both workers answer new jobs: what they held (running or prefetched) has been run or skipped.
      const seen = new Set<number>();
      while (seen.size < 2)
        for (const r of await p.run(range(2).map((i) => delayed(slowIndex)(i, 0)))) seen.add(r.worker);
      const started = readFileSync(log, 'utf8').trim().split('\n').map(Number);
      assert.ok(started.includes(0));
      // The pre-dispatch window (2 x 2 batches of one) is all that was ever queued.
      assert.ok(
        started.every((index) => index < 4),
        `started ${started.length} tasks: ${started.join(',')}`,
      );
      assert.deepEqual(await p.run(range(3).map((i) => delayed(square)(i))), [0, 1, 4]);
      await noCallKeys(scope);
    },
  );

  redisTest('reports a module that fails to import on the worker', async (scope) => {
    const parallel = await twoWorkers(scope);
    const dir = join(repoRoot, 'test/backends/redis', `.tmp-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'broken.mjs');
    writeFileSync(file, 'export function work(x) { return x; }\n');
    const { work } = (await import(pathToFileURL(file).href)) as { work: (x: number) => number };
    writeFileSync(file, "throw new Error('module exploded');\nexport function work(x) { return x; }\n");
    // The caller's copy changed too: the fingerprint matches, and the worker's import throws.
    await assert.rejects(parallel.run([delayed(work)(1)]), (error: unknown) => {
      assert.ok(error instanceof TaskImportError, String(error));
      assert.match(error.message, /broken\.mjs/);
      assert.match(error.message, /module exploded/);
      return true;
    });
    await noCallKeys(scope);
  });

  redisTest(
    'verbose prints the backend and its live concurrency, then joblib-style progress',
    async (scope) => {
      const verbose = await twoWorkers(scope, { verbose: 10 });
      const lines: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
      try {
        await verbose.run(range(8).map((i) => delayed(slowSquare)(i, 10)));
      } finally {
        process.stderr.write = write;
      }
      const text = lines.join('');
      assert.match(text, /Using backend RedisBackend with 2 concurrent workers\./);
      assert.match(text, /Done +8 out of +8 \| elapsed: .* finished/);
      await noCallKeys(scope);
    },
  );

  redisTest(
    'a worker that stops gracefully (SIGTERM) finishes its batch; the others take the rest',
    async (scope) => {
      const parallel = await twoWorkers(scope);
      const extra = await scope.startWorkers({ count: 1, concurrency: 1 });
      const worker = extra[0] as (typeof extra)[number];
      const log = join(tempDir(), 'started.txt');
      writeFileSync(log, '');
      const run = parallel.run(range(12).map((i) => delayed(slowIndex)(i, 150, log)));
      // Stop it once it has started a task (the log names the worker of each task).
      await until(() => readFileSync(log, 'utf8').split('\n').includes(String(worker.pid)));
      const stopped = stopWorker(worker);
      assert.deepEqual(
        (await run).map((r) => r.index),
        range(12),
      );
      const { code, signal } = await stopped;
      assert.equal(signal, null);
      assert.equal(code, 0, worker.output());
      await noCallKeys(scope);
    },
  );

  redisTest(
    'timeoutMs fails the run with a TimeoutError from the worker; signal aborts running tasks',
    async (scope) => {
      const parallel = await twoWorkers(scope);
      const timed = scope.parallel({ nJobs: 2, timeoutMs: 300 });
      await assert.rejects(
        timed.run([delayed(slowSquare)(1, 5), delayed(slowSquare)(2, 5000)]),
        (error: unknown) => {
          assert.ok(error instanceof TimeoutError, String(error));
          assert.equal((error as unknown as { taskIndex: number }).taskIndex, 1);
          return true;
        },
      );
      await timed.close();
      await noCallKeys(scope);
      const controller = new AbortController();
      const log = join(tempDir(), 'started.txt');
      writeFileSync(log, '');
      const run = parallel.run(
        range(4).map((i) => delayed(slowIndex)(i, 60_000, log)),
        { signal: controller.signal },
      );
      // Abort once a task runs: only the abort can end a run of minute-long tasks before the test's end.
      await until(() => readFileSync(log, 'utf8').length > 0);
      controller.abort(new Error('stop now'));
      await assert.rejects(run, /stop now/);
      await noCallKeys(scope);
      // The workers replaced what the abort stopped and take new work.
      assert.deepEqual(await parallel.run(range(3).map((i) => delayed(square)(i))), [0, 1, 4]);
    },
  );

  redisTest('Redis errors never show the password', async (scope) => {
    const p = scope.parallel({ nJobs: 2 }, { connection: 'redis://joblib:s3cret-pw@127.0.0.1:1' });
    await assert.rejects(p.run([delayed(square)(1)]), (error: unknown) => {
      assert.ok(error instanceof RedisBackendError);
      assert.match(error.message, /Cannot reach Redis at redis:\/\/joblib:\*\*\*@127\.0\.0\.1:1/);
      assert.doesNotMatch(String(error.stack), /s3cret/);
      return true;
    });
    await p.close();
  });
});
