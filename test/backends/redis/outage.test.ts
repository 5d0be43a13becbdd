/**
 * Faults of Redis itself and of the caller, injected on a redis-server of the test's own: killed (-9)
 * and restarted with and without persistence, frozen (SIGSTOP) beyond `outageMs`, killed for good under
 * a program that never calls close(); a caller busy for longer than its lease, a caller killed (-9), and
 * a worker that gets two SIGTERMs while its Redis is gone. Waits are bounded; nothing is timed.
 * Workers have one slot each, and tests about the caller have one worker: each started from source
 * costs seconds of CPU on a 2-core machine, and the faults are the same with more.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisBackendError } from '../../../src/backends/redis/errors.ts';
import { delayed, Parallel } from '../../../src/index.ts';
import { repoRoot, tempDir } from '../../helpers.ts';
import { slowIndex } from './fixtures/tasks.ts';
import { callKeysLeft, isCallKey, keysWith, startWorkers, stopAllWorkers, uniquePrefix } from './helpers.ts';
import { destroyOwnServers, OwnRedis, ownServerSkipReason } from './own-server.ts';

const skip = ownServerSkipReason();

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Whether `promise` settles within `ms` (a bounded wait, not a timing). */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function startedTasks(log: string): number {
  return readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
}

function newLog(): string {
  const log = join(tempDir(), 'started.txt');
  writeFileSync(log, '');
  return log;
}

/** Call keys (the call's own and its jobs') that have no lifetime: each would stay in Redis forever. */
async function keysWithoutTtl(client: Redis, prefix: string, queue: string): Promise<string[]> {
  const keys = (await keysWith(`${prefix}:${queue}:*`, client)).filter((key) =>
    isCallKey(prefix, queue, key),
  );
  const forever: string[] = [];
  for (const key of keys) if ((await client.pttl(key)) === -1) forever.push(key);
  return forever;
}

function redisParallel(server: OwnRedis, prefix: string, queue: string, extra: Record<string, unknown> = {}) {
  return new Parallel({
    nJobs: 2,
    backend: 'redis',
    batchSize: 1,
    backendOptions: { connection: server.url, prefix, queue, root: repoRoot, reconcileMs: 250, ...extra },
  });
}

interface Caller {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<void>;
}

/** The caller program of fixtures/caller.ts, in a process of its own. */
function startCaller(spec: Record<string, unknown>): Caller {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test/backends/redis/fixtures/caller.ts')],
    {
      cwd: repoRoot,
      env: { ...process.env, JOBLIB_TS_TEST_CALLER: JSON.stringify(spec) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  callers.add(child);
  void exited.then(() => callers.delete(child));
  return { child, output: () => output, exited };
}

const callers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of callers) child.kill('SIGKILL');
});

describe('redis backend: Redis outages and dead or busy callers', { skip, timeout: 180_000 }, () => {
  after(async () => {
    for (const child of callers) child.kill('SIGKILL');
    await stopAllWorkers();
    await destroyOwnServers();
  });

  test('AOF: Redis killed (-9) mid-run and restarted: every result once, in order; nothing left', async () => {
    const server = await OwnRedis.start({ appendonly: true });
    const prefix = uniquePrefix();
    const queue = 'outage-aof';
    const client = server.client();
    try {
      await startWorkers({ url: server.url, prefix, queue, count: 2, concurrency: 1 });
      const parallel = redisParallel(server, prefix, queue, { outageMs: 20_000 });
      const log = newLog();
      const count = 60;
      const run = parallel.run(range(count).map((i) => delayed(slowIndex)(i, 100, log)));
      run.catch(() => {});
      await waitFor(() => startedTasks(log) >= 8, 30_000, 'tasks to start');
      await server.kill9();
      await sleep(1500);
      await server.start();
      const results = await run;
      assert.equal(results.length, count);
      for (const [i, result] of results.entries())
        assert.equal(result.index, i, `result ${i} is task ${result.index}`);
      await parallel.close();
      assert.deepEqual(await callKeysLeft(prefix, queue, client), []);
      await stopAllWorkers();
    } finally {
      client.disconnect();
      await server.destroy();
    }
  });

  test('no persistence: Redis restarted empty: the run fails saying Redis lost its state; nothing left', async () => {
    const server = await OwnRedis.start({ appendonly: false });
    const prefix = uniquePrefix();
    const queue = 'outage-empty';
    const client = server.client();
    try {
      await startWorkers({ url: server.url, prefix, queue, count: 2, concurrency: 1 });
      const parallel = redisParallel(server, prefix, queue, { outageMs: 20_000 });
      const log = newLog();
      const run = parallel.run(range(60).map((i) => delayed(slowIndex)(i, 100, log)));
      run.catch(() => {});
      await waitFor(() => startedTasks(log) >= 8, 30_000, 'tasks to start');
      await server.kill9();
      await sleep(1000);
      await server.start();
      await assert.rejects(run, (error: unknown) => {
        assert.ok(error instanceof RedisBackendError, String(error));
        assert.match(error.message, /Redis restarted and lost this call's state/);
        assert.doesNotMatch(error.message, /deleted or expired/);
        return true;
      });
      assert.ok(await settlesWithin(parallel.close(), 15_000), 'close() returned');
      // What the caller and the workers wrote after the restart is removed, or expires.
      await waitFor(
        async () => (await keysWithoutTtl(client, prefix, queue)).length === 0,
        15_000,
        'no key without TTL',
      );
      await stopAllWorkers();
    } finally {
      client.disconnect();
      await server.destroy();
    }
  });

  test('Redis frozen beyond outageMs: "Redis unreachable" without the password; close() returns', async () => {
    const password = 'pw-s3cret';
    const server = await OwnRedis.start({ appendonly: false, password });
    const prefix = uniquePrefix();
    const queue = 'outage-frozen';
    const client = server.client();
    try {
      await startWorkers({ url: server.url, prefix, queue, count: 1, concurrency: 1 });
      const parallel = redisParallel(server, prefix, queue, { outageMs: 1500 });
      const log = newLog();
      const run = parallel.run(range(40).map((i) => delayed(slowIndex)(i, 200, log)));
      run.catch(() => {});
      await waitFor(() => startedTasks(log) >= 2, 30_000, 'tasks to start');
      server.freeze();
      await assert.rejects(run, (error: unknown) => {
        assert.ok(error instanceof RedisBackendError, String(error));
        const where = `redis://:\\*\\*\\*@127\\.0\\.0\\.1:${server.port}`;
        assert.match(error.message, new RegExp(`Redis unreachable for \\d+ s at ${where}`));
        assert.doesNotMatch(`${error.message}\n${error.stack}`, /pw-s3cret|deleted or expired/);
        return true;
      });
      assert.ok(await settlesWithin(parallel.close(), 15_000), 'close() returned with Redis frozen');
      server.thaw();
      await waitFor(
        async () => (await keysWithoutTtl(client, prefix, queue)).length === 0,
        15_000,
        'no key without TTL',
      );
      await stopAllWorkers();
    } finally {
      server.thaw();
      client.disconnect();
      await server.destroy();
    }
  });

  test('Redis killed for good: a program that never calls close() fails the run and exits by itself', async () => {
    const server = await OwnRedis.start({ appendonly: false });
    const prefix = uniquePrefix();
    const queue = 'outage-exit';
    try {
      await startWorkers({ url: server.url, prefix, queue, count: 1, concurrency: 1 });
      const log = newLog();
      const caller = startCaller({ url: server.url, prefix, queue, count: 40, ms: 200, log, outageMs: 1500 });
      await waitFor(() => startedTasks(log) >= 2, 30_000, 'tasks to start');
      await server.kill9();
      assert.ok(
        await settlesWithin(caller.exited, 40_000),
        `the program ended by itself:\n${caller.output()}`,
      );
      assert.match(
        caller.output(),
        new RegExp(`error: Redis unreachable for \\d+ s at redis://127\\.0\\.0\\.1:${server.port}`),
      );
      // Back up so that the workers can stop gracefully.
      await server.start();
      await stopAllWorkers();
    } finally {
      await server.destroy();
    }
  });

  test('a caller busy for longer than its lease keeps its call: every result once, in order', async () => {
    const server = await OwnRedis.start({ appendonly: false });
    const prefix = uniquePrefix();
    const queue = 'outage-busy';
    const client = server.client();
    try {
      await startWorkers({ url: server.url, prefix, queue, count: 1, concurrency: 1 });
      const leaseMs = 1500;
      const parallel = new Parallel({
        nJobs: 2,
        backend: 'redis',
        batchSize: 1,
        returnAs: 'generator',
        backendOptions: { connection: server.url, prefix, queue, root: repoRoot, reconcileMs: 250, leaseMs },
      });
      const count = 10;
      const seen: number[] = [];
      for await (const result of parallel.run(range(count).map((i) => delayed(slowIndex)(i, 200)))) {
        if (seen.length === 0) {
          // Busy in this thread (no event loop) for over three lease lifetimes, as a long computation is.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4 * leaseMs);
        }
        seen.push(result.index);
      }
      assert.deepEqual(seen, range(count));
      await parallel.close();
      assert.deepEqual(await callKeysLeft(prefix, queue, client), []);
      await stopAllWorkers();
    } finally {
      client.disconnect();
      await server.destroy();
    }
  });

  test("a dead caller's running task is stopped once its lease runs out, and its worker serves others", async () => {
    const server = await OwnRedis.start({ appendonly: false });
    const prefix = uniquePrefix();
    const queue = 'outage-dead-caller';
    const client = server.client();
    try {
      // One worker with one slot and no prefetch: a new run completes only once the old task is stopped.
      await startWorkers({
        url: server.url,
        prefix,
        queue,
        count: 1,
        concurrency: 1,
        extraArgs: ['--prefetch', '1'],
      });
      const log = newLog();
      const caller = startCaller({
        url: server.url,
        prefix,
        queue,
        count: 1,
        ms: 600_000,
        log,
        leaseMs: 1500,
      });
      await waitFor(() => startedTasks(log) >= 1, 30_000, 'the task to start');
      caller.child.kill('SIGKILL');
      await caller.exited;
      // Its job goes (stopped, then removed) long before the 10-minute task could have ended.
      const jobs = async () =>
        (await keysWith(`${prefix}:${queue}:jt-*`, client)).filter((key) => !key.endsWith(':lock'));
      await waitFor(async () => (await jobs()).length === 0, 60_000, "the dead caller's job to go");
      const parallel = redisParallel(server, prefix, queue);
      const run = parallel.run([delayed(slowIndex)(7, 10)]);
      assert.ok(await settlesWithin(run, 60_000), 'the worker took the next run');
      assert.deepEqual(
        (await run).map((r) => r.index),
        [7],
      );
      await parallel.close();
      await stopAllWorkers();
    } finally {
      client.disconnect();
      await server.destroy();
    }
  });

  test('a worker whose Redis is gone exits on a second SIGTERM, in the middle of a task', async () => {
    const server = await OwnRedis.start({ appendonly: false });
    const prefix = uniquePrefix();
    const queue = 'outage-sigterm';
    try {
      const [worker] = await startWorkers({ url: server.url, prefix, queue, count: 1, concurrency: 1 });
      assert.ok(worker);
      const parallel = redisParallel(server, prefix, queue, { outageMs: 1500 });
      const log = newLog();
      const run = parallel.run([delayed(slowIndex)(0, 600_000, log)]);
      run.catch(() => {});
      await waitFor(() => startedTasks(log) >= 1, 30_000, 'the task to start');
      await server.kill9();
      worker.child.kill('SIGTERM');
      await sleep(300);
      worker.child.kill('SIGTERM');
      assert.ok(await settlesWithin(worker.exited, 10_000), `the worker exited:\n${worker.output()}`);
      await assert.rejects(run, /Redis unreachable/);
      assert.ok(await settlesWithin(parallel.close(), 15_000), 'close() returned');
    } finally {
      await server.destroy();
    }
  });
});
