import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  delayed,
  Parallel,
  TaskImportError,
  UnreachableFunctionError,
  UnsendableArgumentError,
} from '../src/index.ts';
import { negate } from './fixtures/cjs-tasks.cjs';
import { triple } from './fixtures/js-tasks.mjs';
import { openLatch } from './fixtures/latches.ts';
import {
  addTen,
  describeTypes,
  echo,
  failWhen,
  failWithCause,
  recordThenFail,
  returnsFunction,
  seven,
  slowSquare,
  square,
  sumFloat64,
  ValidationError,
  whereAmI,
} from './fixtures/tasks.ts';
import { everyWorkerAnswered, tempDir } from './helpers.ts';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** A module outside the repository with a real node_modules package, imported through its exports map. */
function makePackageProject(): string {
  const root = tempDir('joblib-ts-pkg-');
  const pkg = join(root, 'node_modules', 'tiny-stats');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'tiny-stats', type: 'module', exports: { '.': './lib/index.js' } }),
  );
  mkdirSync(join(pkg, 'lib'));
  writeFileSync(
    join(pkg, 'lib', 'index.js'),
    'export function mean(values) { return values.reduce((a, b) => a + b, 0) / values.length; }\n',
  );
  writeFileSync(join(root, 'use.mjs'), "export { mean } from 'tiny-stats';\n");
  return root;
}

for (const backend of ['threads', 'processes'] as const) {
  describe(`Parallel on ${backend}`, () => {
    const parallel = new Parallel({ nJobs: 2, backend });
    after(() => parallel.close());

    test('returns results in input order, for sync and async functions', async () => {
      const squares = await parallel.run(range(20).map((i) => delayed(square)(i)));
      assert.deepEqual(
        squares,
        range(20).map((i) => i * i),
      );
      // Later tasks finish first: order must still follow the input.
      const slow = await parallel.run([40, 5, 30, 1].map((ms, i) => delayed(slowSquare)(i, ms)));
      assert.deepEqual(slow, [0, 1, 4, 9]);
    });

    test('runs tasks in real workers, reused across run() calls', async () => {
      const first = await parallel.run(range(4).map(() => delayed(whereAmI)()));
      const second = await parallel.run(range(4).map(() => delayed(whereAmI)()));
      const here = whereAmI();
      for (const where of [...first, ...second]) {
        if (backend === 'threads') {
          assert.equal(where.pid, here.pid);
          assert.notEqual(where.threadId, here.threadId);
        } else {
          assert.notEqual(where.pid, here.pid);
        }
      }
      const key = (w: { pid: number; threadId: number }) => `${w.pid}/${w.threadId}`;
      const workersFirst = new Set(first.map(key));
      for (const where of second) assert.ok(workersFirst.has(key(where)), 'second run used a new worker');
    });

    test('reaches built-ins, TypeScript, JavaScript, CommonJS and node_modules exports', async () => {
      const project = makePackageProject();
      const { mean } = (await import(pathToFileURL(join(project, 'use.mjs')).href)) as {
        mean: (v: number[]) => number;
      };
      const { helpers } = (await import('./fixtures/cjs-tasks.cjs')) as {
        helpers: { half(x: number): number };
      };
      const results = await parallel.run([
        delayed(Math.pow)(2, 10),
        delayed(square)(7),
        delayed(triple)(5),
        delayed(negate)(4),
        delayed(helpers.half)(9),
        delayed(mean)([1, 2, 3, 6]),
      ]);
      assert.deepEqual(results, [1024, 49, 15, -4, 4.5, 3]);
    });

    test('arguments and results keep their types', async () => {
      const values = [
        new Map([['a', 1]]),
        new Set([1, 2]),
        new Date(0),
        new Float64Array([1, 2]),
        10n,
        'text',
      ];
      const kinds = await parallel.run(values.map((v) => delayed(describeTypes)(v)));
      assert.deepEqual(kinds, ['Map(1)', 'Set(2)', 'Date', 'Float64Array', 'bigint', 'string']);
      const nested = {
        when: new Date(5),
        data: new Float64Array([0.5]),
        tags: new Set(['x']),
        big: 2n ** 70n,
      };
      const [back] = await parallel.run([delayed(echo)(nested)]);
      assert.deepEqual(back, nested);
      assert.ok(back?.data instanceof Float64Array);
      const [total] = await parallel.run([delayed(sumFloat64)(new Float64Array([1.5, 2.5]))]);
      assert.equal(total, 4);
    });

    test('batches of many number tasks (sent packed) keep every value and every task', async () => {
      const packed = new Parallel({ nJobs: 2, backend, batchSize: 64 });
      // Tasks without arguments: a batch must still run each of them.
      assert.deepEqual(await packed.run(range(256).map(() => delayed(seven)())), new Array(256).fill(7));
      // Integers travel as 32-bit integers; anything else must come back bit for bit.
      const odd = [0, -0, Number.NaN, 1.5, 2 ** 31, -(2 ** 31), -1, 2 ** 53, Number.POSITIVE_INFINITY];
      const values = range(256).map((i) => (i % 3 === 0 ? (odd[i % odd.length] as number) : i));
      const echoed = await packed.run(values.map((v) => delayed(echo<number>)(v)));
      assert.equal(echoed.length, values.length);
      for (let i = 0; i < values.length; i++) assert.ok(Object.is(echoed[i], values[i]), `task ${i}`);
      const ints = await packed.run(range(256).map((i) => delayed(Math.max)(i - 128, -(2 ** 31))));
      assert.deepEqual(
        ints,
        range(256).map((i) => i - 128),
      );
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
    });

    test('runs a closure and a method by value; refuses a bound function before running anything', async () => {
      const offset = 10;
      const addOffset = (x: number) => x + offset;
      assert.deepEqual(await parallel.run([delayed(addOffset)(1)]), [11]);
      class Scaler {
        scale(x: number) {
          return x * 2;
        }
      }
      assert.deepEqual(await parallel.run([delayed(new Scaler().scale)(1)]), [2]);
      await assert.rejects(parallel.run([delayed(square.bind(null))(1)]), (error: unknown) => {
        assert.ok(error instanceof UnreachableFunctionError);
        assert.match(error.message, /bound function/);
        return true;
      });
    });

    test('reaches a function made by a factory and exported as a constant', async () => {
      assert.deepEqual(await parallel.run([delayed(addTen)(1), delayed(addTen)(5)]), [11, 15]);
    });

    test('refuses an argument that cannot be sent, naming the task and the argument', async () => {
      const tasks = [delayed(echo)(1), delayed(echo)(2), delayed(echo)(new WeakMap())];
      await assert.rejects(parallel.run(tasks), (error: unknown) => {
        assert.ok(error instanceof UnsendableArgumentError);
        assert.equal(error.taskIndex, 2);
        assert.equal(error.argumentIndex, 0);
        assert.match(error.message, /^Task 2 \(echo\): argument 0/);
        return true;
      });
      await assert.rejects(
        parallel.run([delayed(returnsFunction)()]),
        /result of this task cannot be sent back/,
      );
    });

    test('rethrows the first error with its class, message, fields, cause, stack, index and function', async () => {
      await assert.rejects(parallel.run(range(6).map((i) => delayed(failWhen)(i, 4))), (error: unknown) => {
        assert.ok(error instanceof ValidationError, 'the real class, exported by the task module');
        assert.equal(error.name, 'ValidationError');
        assert.equal(error.message, 'value 4 is not allowed');
        assert.equal(error.code, 'E_BAD_VALUE');
        assert.deepEqual(error.details, { field: 'x' });
        const info = error as unknown as { taskIndex: number; functionName: string };
        assert.equal(info.taskIndex, 4);
        assert.equal(info.functionName, 'failWhen');
        // The worker-side stack, pointing at the TypeScript source line of the throw.
        const source = readFileSync(new URL('./fixtures/tasks.ts', import.meta.url), 'utf8').split('\n');
        const line = source.findIndex((l) => l.includes('throw new ValidationError')) + 1;
        assert.match(error.stack ?? '', new RegExp(`fixtures/tasks\\.ts:${line}:`));
        return true;
      });
      await assert.rejects(parallel.run([delayed(failWithCause)(1)]), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.equal(error.message, 'outer failure for 1');
        assert.ok(error.cause instanceof RangeError);
        assert.equal((error.cause as Error).message, 'inner cause');
        return true;
      });
    });

    test('starts no further tasks after an error, and the pool stays usable', async () => {
      const dir = tempDir();
      const log = join(dir, 'started.txt');
      // Every task but the failing one waits for this latch, opened once the run has failed: until
      // then only the failure completes, so nothing beyond the first window is ever dispatched.
      const gate = join(dir, 'gate');
      writeFileSync(log, '');
      const tasks = range(40).map((i) => delayed(recordThenFail)(log, i, 1, gate));
      const p = new Parallel({ nJobs: 2, backend, batchSize: 1 });
      await assert.rejects(p.run(tasks), /task 1 failed on purpose/);
      openLatch(gate);
      await everyWorkerAnswered(backend, 2);
      const started = readFileSync(log, 'utf8').trim().split('\n').map(Number);
      assert.ok(started.includes(1));
      // The pre-dispatch window (2 * nJobs batches of one task) is all that was ever handed out.
      assert.ok(
        started.every((index) => index < 4),
        `started ${started.length} tasks: ${started.join(',')}`,
      );
      assert.deepEqual(await p.run(range(3).map((i) => delayed(square)(i))), [0, 1, 4]);
      await p.close();
    });

    test('reports a module that fails to import', async () => {
      const dir = tempDir();
      const file = join(dir, 'broken.mjs');
      writeFileSync(file, 'export function work(x) { return x; }\n');
      const { work } = (await import(pathToFileURL(file).href)) as { work: (x: number) => number };
      // The worker imports the file afresh: make it throw there.
      writeFileSync(file, "throw new Error('module exploded');\nexport function work(x) { return x; }\n");
      await assert.rejects(parallel.run([delayed(work)(1)]), (error: unknown) => {
        assert.ok(error instanceof TaskImportError);
        assert.match(error.message, /broken\.mjs/);
        assert.match(error.message, /module exploded/);
        return true;
      });
    });
  });
}

describe('Parallel in-process', () => {
  test('nJobs 1 and the sequential backend run in this thread, any function', async () => {
    const offset = 1;
    const closure = (x: number) => x + offset;
    assert.deepEqual(await new Parallel().run(range(5).map((i) => delayed(closure)(i))), [1, 2, 3, 4, 5]);
    const seq = new Parallel({ nJobs: 4, backend: 'sequential' });
    const where = await seq.run([delayed(whereAmI)()]);
    assert.deepEqual(where, [whereAmI()]);
    await assert.rejects(seq.run(range(3).map((i) => delayed(failWhen)(i, 1))), (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.equal((error as unknown as { taskIndex: number }).taskIndex, 1);
      return true;
    });
  });

  test('await using closes the workers; the next Parallel starts new ones', async () => {
    const key = (w: { threadId: number }) => w.threadId;
    let before: number[];
    {
      await using p = new Parallel({ nJobs: 2 });
      before = (await p.run(range(4).map(() => delayed(whereAmI)()))).map(key);
    }
    const p2 = new Parallel({ nJobs: 2 });
    const afterClose = (await p2.run(range(4).map(() => delayed(whereAmI)()))).map(key);
    await p2.close();
    for (const id of afterClose) assert.ok(!before.includes(id), `thread ${id} survived close()`);
  });
});
