/**
 * What a worker refuses to import (a job in Redis must not be able to run arbitrary code on a worker),
 * version skew, a module the worker lacks, and a call with no worker at all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { type BatchPayload, pack, unpack, type WireOutcome } from '../../../src/backends/redis/codec.ts';
import {
  ModuleRefusedError,
  NoRedisWorkerError,
  VersionSkewError,
} from '../../../src/backends/redis/index.ts';
import { fileFingerprint } from '../../../src/backends/redis/modules.ts';
import { Keys } from '../../../src/backends/redis/options.ts';
import { delayed, TaskImportError } from '../../../src/index.ts';
import { tempDir } from '../../helpers.ts';
import {
  callKeysLeft,
  redisTest as ownQueueTest,
  REDIS_URL,
  type RedisScope,
  redisSkipReason,
  redisTest,
  sharedWorkers,
} from './helpers.ts';

const skip = await redisSkipReason();

describe('redis worker: refusals, version skew, missing modules', { skip }, () => {
  // The caller's project and the worker's copy of it (another folder, as on another machine).
  const callerRoot = realpathSync(tempDir('jt-caller-'));
  const workerRoot = realpathSync(tempDir('jt-worker-'));
  const outside = realpathSync(tempDir('jt-outside-'));

  before(() => {
    writeFileSync(join(callerRoot, 'tasks.mjs'), 'export function work(x) { return x + 1; }\n');
    writeFileSync(join(callerRoot, 'only-here.mjs'), 'export function here(x) { return x; }\n');
    writeFileSync(join(callerRoot, 'same.mjs'), 'export function same(x) { return x * 2; }\n');
    writeFileSync(
      join(workerRoot, 'tasks.mjs'),
      'export function work(x) { return x + 2; } // another version\n',
    );
    writeFileSync(join(workerRoot, 'same.mjs'), 'export function same(x) { return x * 2; }\n');
    writeFileSync(join(outside, 'evil.mjs'), 'export function evil() { return "ran outside the root"; }\n');
    mkdirSync(join(workerRoot, 'lib'));
    symlinkSync(join(outside, 'evil.mjs'), join(workerRoot, 'lib', 'link.mjs'));
  });

  // One worker for the suite, with the worker's copy of the project as its root (started on first use,
  // after `before` wrote that copy). A refusal leaves it serving: no test here stops it.
  const shared = skip ? undefined : sharedWorkers({ count: 1, concurrency: 1, root: workerRoot });
  const redisTest = (name: string, body: (scope: RedisScope) => Promise<void>) =>
    ownQueueTest(name, body, { shared });

  /** The suite's worker, on the test's queue. */
  function startWorker(scope: RedisScope): Promise<unknown> {
    return scope.sharedWorkers();
  }

  /**
   * Runs `body` with a function that submits one job by hand, as a hostile or buggy client could, and
   * returns the worker's answer.
   */
  async function withRawJobs(
    scope: RedisScope,
    body: (rawJob: (fn: BatchPayload['fns'][number]) => Promise<WireOutcome>) => Promise<void>,
  ): Promise<void> {
    await startWorker(scope);
    const keys = new Keys(scope.prefix, scope.queue);
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const bullQueue = new Queue(scope.queue, { connection, prefix: scope.prefix });
    try {
      await body(async (fn) => {
        const call = randomBytes(8).toString('hex');
        const payload: BatchPayload = { v: 1, first: 0, fns: [fn], f: 0, a: [[]] };
        await connection.set(keys.marker(call), '1', 'PX', 60_000);
        await connection.set(keys.payload(call, 0), pack(payload), 'PX', 60_000);
        await bullQueue.add(
          'batch',
          { c: call, s: 0, ttl: 60_000 },
          { jobId: keys.jobId(call, 0), removeOnComplete: true },
        );
        const reply = await connection.blpopBuffer(keys.results(call), 60); // a guard against a hang, not a speed check
        await connection.del(keys.marker(call), keys.payload(call, 0), keys.results(call));
        assert.ok(reply, 'the worker answered');
        return unpack(reply[1]) as WireOutcome;
      });
    } finally {
      await bullQueue.close();
      connection.disconnect();
    }
  }

  function refusal(outcome: WireOutcome): string {
    assert.equal(outcome.ok, false);
    const { e } = outcome as Extract<WireOutcome, { ok: false }>;
    assert.equal(e.kind, 'error');
    if (e.kind !== 'error') return '';
    assert.equal(e.error.constructorName, 'ModuleRefusedError', e.error.message);
    return e.error.message;
  }

  redisTest('refuses absolute paths, URLs, bare package names and paths that leave the root', (scope) =>
    withRawJobs(scope, async (rawJob) => {
      const h = fileFingerprint(join(outside, 'evil.mjs'));
      const evil = join(outside, 'evil.mjs');
      assert.match(refusal(await rawJob({ m: evil, p: ['evil'], h, n: 'evil' })), /is an absolute path/);
      assert.match(
        refusal(await rawJob({ m: pathToFileURL(evil).href, p: ['evil'], h, n: 'evil' })),
        /is a URL/,
      );
      assert.match(
        refusal(await rawJob({ m: 'node:child_process', p: ['execSync'], h, n: 'x' })),
        /is a URL/,
      );
      assert.match(refusal(await rawJob({ m: 'some-package', p: ['run'], h, n: 'x' })), /bare package name/);
      const up = `./../${outside.split('/').pop()}/evil.mjs`;
      assert.match(refusal(await rawJob({ m: up, p: ['evil'], h, n: 'evil' })), /outside its --root/);
      // A symlink inside the root that points outside it is followed, then refused.
      assert.match(
        refusal(await rawJob({ m: './lib/link.mjs', p: ['evil'], h, n: 'evil' })),
        /resolves to .*evil\.mjs, outside its --root/,
      );
    }),
  );

  redisTest('refuses globals that run code and export paths that walk prototypes', (scope) =>
    withRawJobs(scope, async (rawJob) => {
      assert.match(refusal(await rawJob({ g: ['eval'], n: 'eval' })), /refuses to call the global eval/);
      assert.match(refusal(await rawJob({ g: ['process', 'exit'], n: 'exit' })), /global process\.exit/);
      const h = fileFingerprint(join(workerRoot, 'same.mjs'));
      assert.match(
        refusal(await rawJob({ m: './same.mjs', p: ['same', 'constructor'], h, n: 'x' })),
        /refuses the export path/,
      );
    }),
  );

  redisTest(
    'a worker whose copy of the module differs fails the task with a version-skew error',
    async (scope) => {
      await startWorker(scope);
      const { work } = (await import(pathToFileURL(join(callerRoot, 'tasks.mjs')).href)) as {
        work: (x: number) => number;
      };
      const { same } = (await import(pathToFileURL(join(callerRoot, 'same.mjs')).href)) as {
        same: (x: number) => number;
      };
      const p = scope.parallel({ nJobs: 1 }, { root: callerRoot });
      assert.deepEqual(await p.run([delayed(same)(21)]), [42]);
      await assert.rejects(p.run([delayed(work)(1)]), (error: unknown) => {
        assert.ok(error instanceof VersionSkewError, String(error));
        assert.match(error.message, /Version skew: the worker on .* has a different copy of \.\/tasks\.mjs/);
        return true;
      });
      assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), []);
    },
  );

  redisTest('a worker without the module reports a clear import error', async (scope) => {
    await startWorker(scope);
    const { here } = (await import(pathToFileURL(join(callerRoot, 'only-here.mjs')).href)) as {
      here: (x: number) => number;
    };
    const p = scope.parallel({ nJobs: 1 }, { root: callerRoot });
    await assert.rejects(p.run([delayed(here)(1)]), (error: unknown) => {
      assert.ok(error instanceof TaskImportError, String(error));
      assert.match(error.message, /has no module \.\/only-here\.mjs under its root/);
      return true;
    });
    assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), []);
  });

  redisTest('the caller refuses a module outside its own root before sending anything', async (scope) => {
    // A worker is there: the refusal comes from the caller's own check, not from a missing worker.
    await startWorker(scope);
    const { evil } = (await import(pathToFileURL(join(outside, 'evil.mjs')).href)) as { evil: () => string };
    const p = scope.parallel({ nJobs: 1 }, { root: callerRoot });
    await assert.rejects(p.run([delayed(evil)()]), (error: unknown) => {
      assert.ok(error instanceof ModuleRefusedError, String(error));
      assert.match(error.message, /is outside the project root/);
      return true;
    });
    assert.deepEqual(await callKeysLeft(scope.prefix, scope.queue), []);
  });
});

describe('redis backend with no worker', { skip }, () => {
  redisTest('run() fails after workerWaitMs with how to start a worker, and leaves no key', async (scope) => {
    const { square } = await import('../../fixtures/tasks.ts');
    const p = scope.parallel({ nJobs: 2 }, { workerWaitMs: 300 });
    await assert.rejects(p.run([delayed(square)(2)]), (error: unknown) => {
      assert.ok(error instanceof NoRedisWorkerError, String(error));
      assert.match(error.message, new RegExp(`No joblib-ts worker is serving queue '${scope.queue}'`));
      assert.match(
        error.message,
        new RegExp(`npx joblib-ts worker --root \\. --queue ${scope.queue} --prefix ${scope.prefix}`),
      );
      return true;
    });
  });
});
