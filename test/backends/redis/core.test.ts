/**
 * The core suite's behaviour tests (order, types, errors, verbose, lazy input, refusals) on the
 * `redis` backend, with two worker processes started here; and after every run, no key of the call left.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { type RedisBackend, RedisBackendError } from '../../../src/backends/redis/index.ts';
import {
  delayed,
  Parallel,
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
import { repoRoot, tempDir } from '../../helpers.ts';
import { total } from './fixtures/tasks.ts';
import {
  callKeysLeft,
  keysWith,
  REDIS_URL,
  redisSkipReason,
  removeQueue,
  startWorkers,
  stopAllWorkers,
  stopWorker,
  uniquePrefix,
} from './helpers.ts';

const skip = await redisSkipReason();
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('Parallel on redis (two worker processes)', { skip }, () => {
  const prefix = uniquePrefix();
  const queue = 'core';
  const backendOptions = { connection: REDIS_URL, prefix, queue, root: repoRoot, workerWaitMs: 10_000 };
  let parallel: Parallel;

  before(async () => {
    await startWorkers({ prefix, queue, count: 2, concurrency: 1 });
    parallel = new Parallel({ nJobs: 2, backend: 'redis', backendOptions });
  });

  after(async () => {
    await parallel.close();
    await stopAllWorkers();
    await removeQueue(prefix, queue);
    assert.deepEqual(await keysWith(`${prefix}*`), [], 'no key of the test prefix is left');
  });

  async function noCallKeys(): Promise<void> {
    assert.deepEqual(await callKeysLeft(prefix, queue), [], 'the call left keys in Redis');
  }

  test('returns results in input order, for sync and async functions', async () => {
    const squares = await parallel.run(range(20).map((i) => delayed(square)(i)));
    assert.deepEqual(
      squares,
      range(20).map((i) => i * i),
    );
    const slow = await parallel.run([60, 5, 40, 1].map((ms, i) => delayed(slowSquare)(i, ms)));
    assert.deepEqual(slow, [0, 1, 4, 9]);
    await noCallKeys();
  });

  test("effective concurrency is the live workers' total", async () => {
    const backend = (parallel as unknown as { backend: RedisBackend }).backend;
    const live = await backend.liveWorkers();
    assert.equal(live.workers.length, 2);
    assert.equal(backend.concurrency, 2);
  });

  test('reaches built-ins, TypeScript, JavaScript, CommonJS and factory-made exports', async () => {
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
    await noCallKeys();
  });

  test('arguments and results keep their types', async () => {
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
    await noCallKeys();
  });

  test('a large argument is stored once and shared by the tasks that use it', async () => {
    const big = new Float64Array(200_000).fill(0.5); // 1.6 MB, over the 1 MB threshold
    const results = await parallel.run(range(8).map((i) => delayed(total)(big, i)));
    assert.deepEqual(
      results,
      range(8).map((i) => 100_000 * i),
    );
    await noCallKeys();
  });

  test('accepts generators and async iterables, read lazily', async () => {
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
    await noCallKeys();
  });

  test('refuses a closure, an unsendable argument and an unsendable result', async () => {
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
    await noCallKeys();
  });

  test('rethrows the first error with its class, message, fields, cause, remote stack, index, function and host', async () => {
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
    await noCallKeys();
  });

  test('starts no further tasks after an error, removes the waiting jobs, and stays usable', async () => {
    const dir = tempDir();
    const log = join(dir, 'started.txt');
    writeFileSync(log, '');
    const p = new Parallel({ nJobs: 2, backend: 'redis', backendOptions, batchSize: 1 });
    const gate = join(dir, 'gate');
    await assert.rejects(
      p.run(range(40).map((i) => delayed(recordThenFail)(log, i, 1, gate))),
      /task 1 failed on purpose/,
    );
    openLatch(gate);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const started = readFileSync(log, 'utf8').trim().split('\n').map(Number);
    assert.ok(started.includes(1));
    // The pre-dispatch window (2 x 2 batches of one) and the workers' prefetch bound what had started.
    assert.ok(started.length <= 10, `started ${started.length} tasks: ${started.join(',')}`);
    assert.deepEqual(await p.run(range(3).map((i) => delayed(square)(i))), [0, 1, 4]);
    await p.close();
    await noCallKeys();
  });

  test('reports a module that fails to import on the worker', async () => {
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
    await noCallKeys();
  });

  test('verbose prints the backend and its live concurrency, then joblib-style progress', async () => {
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      await new Parallel({ nJobs: 2, backend: 'redis', backendOptions, verbose: 10 }).run(
        range(8).map((i) => delayed(slowSquare)(i, 10)),
      );
    } finally {
      process.stderr.write = write;
    }
    const text = lines.join('');
    assert.match(text, /Using backend RedisBackend with 2 concurrent workers\./);
    assert.match(text, /Done +8 out of +8 \| elapsed: .* finished/);
    await noCallKeys();
  });

  test('a worker that stops gracefully (SIGTERM) finishes its batch; the others take the rest', async () => {
    const extra = await startWorkers({ prefix, queue, count: 1, concurrency: 1 });
    const worker = extra[0] as (typeof extra)[number];
    const run = parallel.run(range(12).map((i) => delayed(slowSquare)(i, 150)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stopped = stopWorker(worker);
    assert.deepEqual(
      await run,
      range(12).map((i) => i * i),
    );
    const { code, signal } = await stopped;
    assert.equal(signal, null);
    assert.equal(code, 0, worker.output());
    await noCallKeys();
  });

  test('timeoutMs fails the run with a TimeoutError from the worker; signal aborts running tasks', async () => {
    const timed = new Parallel({ nJobs: 2, backend: 'redis', backendOptions, timeoutMs: 300 });
    let started = performance.now();
    await assert.rejects(
      timed.run([delayed(slowSquare)(1, 5), delayed(slowSquare)(2, 5000)]),
      (error: unknown) => {
        assert.ok(error instanceof TimeoutError, String(error));
        assert.equal((error as unknown as { taskIndex: number }).taskIndex, 1);
        return true;
      },
    );
    assert.ok(performance.now() - started < 4000, 'the timeout fired');
    await timed.close();
    await noCallKeys();
    const controller = new AbortController();
    started = performance.now();
    const run = parallel.run(
      range(4).map((i) => delayed(slowSquare)(i, 5000)),
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error('stop now')), 300);
    await assert.rejects(run, /stop now/);
    assert.ok(performance.now() - started < 3000, 'the abort was prompt');
    await noCallKeys();
    // The workers replaced what the abort stopped and take new work.
    assert.deepEqual(await parallel.run(range(3).map((i) => delayed(square)(i))), [0, 1, 4]);
  });

  test('Redis errors never show the password', async () => {
    const p = new Parallel({
      nJobs: 2,
      backend: 'redis',
      backendOptions: { ...backendOptions, connection: 'redis://joblib:s3cret-pw@127.0.0.1:1' },
    });
    await assert.rejects(p.run([delayed(square)(1)]), (error: unknown) => {
      assert.ok(error instanceof RedisBackendError);
      assert.match(error.message, /Cannot reach Redis at redis:\/\/joblib:\*\*\*@127\.0\.0\.1:1/);
      assert.doesNotMatch(String(error.stack), /s3cret/);
      return true;
    });
    await p.close();
  });
});
