/**
 * Code from the network is a way in: a function sent by value crosses Redis only when the caller and
 * the workers share a secret. Signed with it, closures, inline arrows, recursive and async closures, a
 * class beside the loop and captured imports run on workers and give the results of `nJobs: 1`; a worker
 * without the secret, or with another, refuses the batch and runs nothing of it; a caller without one
 * is told how to share one; exported functions keep working without any. The secret shows nowhere.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { inspect } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { CodeRefusedError, RedisBackend } from '../../../src/backends/redis/index.ts';
import { delayed, InvalidArgumentError, Parallel, UnreachableFunctionError } from '../../../src/index.ts';
import { square } from '../../fixtures/tasks.ts';
import { tempDir } from '../../helpers.ts';
import { keysWith, type RedisScope, redisSkipReason, redisTest, sharedWorkers } from './helpers.ts';

const skip = await redisSkipReason();
// The workers this file starts inherit its environment: no secret but the ones given here.
delete process.env.JOBLIB_TS_SECRET;

const SECRET = 'a-test-secret-0123456789abcdef';
const OTHER = 'another-secret-0123456789abcdef';

describe('redis: functions sent by value need a shared secret', { skip }, () => {
  const dir = tempDir('jt-secret-');
  const secretFile = join(dir, 'secret');
  const otherFile = join(dir, 'other');
  writeFileSync(secretFile, `${SECRET}\n`);
  writeFileSync(otherFile, OTHER);

  // A worker with the shared secret, for the two tests that want one (neither stops it).
  const withSecret = skip
    ? undefined
    : sharedWorkers({ count: 1, concurrency: 2, extraArgs: ['--secret-file', secretFile] });

  async function workers(scope: RedisScope, file: string | undefined): Promise<string[]> {
    if (file === secretFile) return (await scope.sharedWorkers()).map((w) => w.output());
    // One slot: a Redis worker starts a local worker process per slot, and refusing code needs none.
    const started = await scope.startWorkers({
      count: 1,
      concurrency: 1,
      extraArgs: file ? ['--secret-file', file] : [],
    });
    return started.map((w) => w.output());
  }

  redisTest(
    'signed with the shared secret, functions of this file run as with nJobs: 1',
    async (scope) => {
      await workers(scope, secretFile);
      const parallel = scope.parallel({ nJobs: 2, batchSize: 1 }, { secret: SECRET });
      const offset = 7;
      const weights = new Map([
        [1, 10],
        [2, 20],
        [3, 30],
      ]);
      const table = new Float64Array([0.5, 1.5, 2.5]);
      const weigh = (x: number) => x * (weights.get(x) ?? 0) + offset;
      const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));
      const later = async (x: number) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return square(x) + (table[x - 1] ?? 0);
      };
      class Point {
        constructor(
          readonly x: number,
          readonly y: number,
        ) {}
        norm2(): number {
          return this.x ** 2 + this.y ** 2;
        }
      }
      const tasks = () => [
        ...[1, 2, 3].map((x) => delayed(weigh)(x)),
        ...[10, 12].map((n) => delayed(fib)(n)),
        ...[1, 3].map((x) => delayed(later)(x)),
        ...[3, 5].map((x) => delayed((p: Point) => p.norm2())(new Point(x, 4))),
        delayed((x: number) => x * 2)(21),
        delayed((text: string) => gunzipSync(gzipSync(text)).toString('utf8').length)('hello'),
      ];
      const expected = await new Parallel({ nJobs: 1 }).run(tasks());
      assert.deepEqual(await parallel.run(tasks()), expected);
      assert.deepEqual(expected, [17, 47, 97, 55, 144, 1.5, 11.5, 25, 41, 42, 5]);
      // A throw keeps its class (defined here, captured by the task), message and fields.
      class TooBig extends Error {
        constructor(readonly value: number) {
          super(`${value} is too big`);
          this.name = 'TooBig';
        }
      }
      const check = (x: number) => {
        if (x > 2) throw new TooBig(x);
        return x;
      };
      await assert.rejects(parallel.run([1, 2, 3].map((x) => delayed(check)(x))), (error: unknown) => {
        assert.ok(error instanceof TooBig, String(error));
        assert.equal(error.value, 3);
        assert.equal(error.message, '3 is too big');
        return true;
      });
    },
    { shared: withSecret },
  );

  for (const [label, file, pattern] of [
    ['a worker without a secret', undefined, /has no secret/],
    ['a worker with another secret', otherFile, /does not match its secret/],
  ] as const) {
    redisTest(`${label} refuses the code and runs nothing of it`, async (scope) => {
      const output = await workers(scope, file);
      const marker = join(dir, `ran-${scope.queue}`);
      const touch = (x: number) => {
        writeFileSync(marker, 'ran');
        return x;
      };
      const parallel = scope.parallel({ nJobs: 2 }, { secret: SECRET });
      await assert.rejects(parallel.run([1, 2].map((x) => delayed(touch)(x))), (error: unknown) => {
        assert.ok(error instanceof CodeRefusedError, String(error));
        assert.match(error.message, pattern);
        assert.match(error.message, /Nothing ran/);
        assert.ok(!error.message.includes(SECRET) && !error.message.includes(OTHER), error.message);
        return true;
      });
      assert.equal(existsSync(marker), false, 'the refused code ran');
      // Exported functions need no secret.
      assert.deepEqual(await parallel.run([2, 3].map((x) => delayed(square)(x))), [4, 9]);
      for (const line of output) assert.ok(!line.includes(SECRET) && !line.includes(OTHER), line);
    });
  }

  redisTest(
    'a caller without a secret is told how to share one; exported functions still run',
    async (scope) => {
      await workers(scope, secretFile);
      const parallel = scope.parallel({ nJobs: 2 });
      const offset = 1;
      await assert.rejects(parallel.run([delayed((x: number) => x + offset)(1)]), (error: unknown) => {
        assert.ok(error instanceof UnreachableFunctionError, String(error));
        assert.match(error.message, /share a secret: set JOBLIB_TS_SECRET \(or backendOptions\.secret\)/);
        assert.match(error.message, /--secret-file FILE/);
        return true;
      });
      assert.deepEqual(await parallel.run([delayed(square)(5)]), [25]);
    },
    { shared: withSecret },
  );

  redisTest(
    'the secret is in no key, message or printed option; a bad one is refused by name',
    async (scope) => {
      const backend = new RedisBackend(scope.backendOptions({ secret: SECRET }));
      try {
        assert.ok(!inspect(backend, { depth: 5 }).includes(SECRET));
        assert.ok(!JSON.stringify(backend.options).includes(SECRET));
      } finally {
        await backend.close();
      }
      for (const key of await keysWith(`${scope.prefix}:*`)) assert.ok(!key.includes(SECRET), key);
      assert.throws(
        () => new RedisBackend(scope.backendOptions({ secret: 'short' })),
        (error: unknown) =>
          error instanceof InvalidArgumentError &&
          /redis backend option secret is too short/.test(error.message) &&
          !error.message.includes('short,'),
      );
      assert.throws(
        () => new RedisBackend(scope.backendOptions({ secret: 42 as unknown as string })),
        /redis backend option secret must be a string/,
      );
      process.env.JOBLIB_TS_SECRET = SECRET;
      try {
        assert.equal(new RedisBackend(scope.backendOptions()).byValue, true, 'JOBLIB_TS_SECRET is read');
      } finally {
        delete process.env.JOBLIB_TS_SECRET;
      }
      const missing = await scope
        .startWorkers({ count: 1, extraArgs: ['--secret-file', join(dir, 'nope')], waitRegistered: false })
        .then(async ([worker]) => {
          const exit = await worker?.exited;
          return { exit, output: worker?.output() ?? '' };
        });
      assert.equal(missing.exit?.code, 1, missing.output);
      assert.match(missing.output, /--secret-file .*nope cannot be read \(ENOENT\)/);
    },
  );
});
