/**
 * Functions a worker cannot import travel by value (issue 13): inline arrows, closures, functions of
 * this file (the entry file of its test process), with what they capture. Each case must give the
 * same results on workers as with nJobs: 1, which runs here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { gunzipSync, gzipSync } from 'node:zlib';
import { getLineInfo } from 'acorn';
import type { AnyFunction } from '../src/delayed.ts';
import { delayed, Parallel, UncapturableValueError } from '../src/index.ts';
import { addOne, makeScaler } from './fixtures/by-value/helpers.ts';

const factor = 3;
const weights = new Float64Array([0.5, 1.5, 2.5]);
const names = new Map([
  [1, 'one'],
  [2, 'two'],
]);

function notExported(x: number): number {
  return x * factor + 1;
}

const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));
const isEven = (n: number): boolean => (n === 0 ? true : isOdd(n - 1));
const isOdd = (n: number): boolean => (n === 0 ? false : isEven(n - 1));

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
  norm2(): number {
    return this.x * this.x + this.y * this.y;
  }
  scaled(k: number): Point {
    return new Point(this.x * k, this.y * k);
  }
}

class LimitError extends Error {
  constructor(
    message: string,
    readonly limit: number,
  ) {
    super(message);
    this.name = 'LimitError';
  }
}

const limit = 2;
const failAbove = (x: number): number => {
  if (x > limit) throw new LimitError(`${x} is above ${limit}`, limit); // THROW-LINE
  return x;
};

const inputs = [0, 1, 2, 3, 4, 5, 6, 7];

/** Every case: a task function and the arguments of each task. */
const cases: [string, AnyFunction, (i: number) => unknown[]][] = [
  ['an inline arrow', (x: number) => x * 2, (i) => [i]],
  ['a closure over numbers', (x: number) => x * factor + limit, (i) => [i]],
  ['a captured typed array', (x: number) => (weights[x % 3] as number) * x, (i) => [i]],
  ['a captured Map', (x: number) => names.get(x) ?? 'other', (i) => [i]],
  ['a function of this file, not exported', notExported, (i) => [i]],
  ['a closure calling it', (x: number) => notExported(x) - 1, (i) => [i]],
  ['a closure made in another module (with its non-exported helper)', makeScaler(4), (i) => [i]],
  ['an imported function of our own module', (x: number) => addOne(x), (i) => [i]],
  ['an imported function of a package', (x: number) => getLineInfo('a\nbc\nd\n', x % 7).line, (i) => [i]],
  ['node:zlib functions', (x: number) => gunzipSync(gzipSync(Buffer.from(`v${x}`))).toString(), (i) => [i]],
  [
    'a node:zlib namespace',
    (x: number) => zlib.inflateSync(zlib.deflateSync(Buffer.from(`${x}`))).toString(),
    (i) => [i],
  ],
  [
    'an async closure',
    async (x: number) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return x + factor;
    },
    (i) => [i],
  ],
  ['a recursive closure', (x: number) => fib(x), (i) => [i]],
  ['mutually recursive closures', (x: number) => isEven(x), (i) => [i]],
  ['a class beside the loop: instances as arguments', (p: Point) => p.norm2(), (i) => [new Point(i, 1)]],
  [
    'a function as an argument',
    (f: (x: number) => number, x: number) => f(x),
    (i) => [(y: number) => y * factor, i],
  ],
];

for (const backend of ['threads', 'processes'] as const) {
  describe(`by value on ${backend}`, { timeout: 120_000 }, () => {
    const parallel = new Parallel({ nJobs: 2, backend });
    const here = new Parallel({ nJobs: 1 });
    after(() => parallel.close());

    for (const [name, fn, args] of cases) {
      test(`${name}: same results as nJobs: 1`, async () => {
        const tasks = () => inputs.map((i) => delayed(fn)(...args(i)));
        const expected = await here.run(tasks());
        assert.deepEqual(await parallel.run(tasks()), expected);
      });
    }

    test('import() inside a closure resolves next to this file, as it did here', async () => {
      const viaImport = async (x: number): Promise<number> => {
        const helpers = await import('./fixtures/by-value/helpers.ts');
        return helpers.addOne(x) * factor;
      };
      assert.deepEqual(await parallel.run([1, 2].map((x) => delayed(viaImport)(x))), [6, 9]);
    });

    test('a class beside the loop: instances come back as instances of it', async () => {
      const out = await parallel.run(
        [1, 2, 3].map((i) => delayed((p: Point) => p.scaled(2))(new Point(i, i))),
      );
      for (const [i, p] of out.entries()) {
        assert.ok(p instanceof Point, `result ${i} is a ${Object.getPrototypeOf(p)?.constructor?.name}`);
        assert.equal(p.norm2(), 8 * (i + 1) ** 2);
      }
    });

    test('captures are a snapshot taken at run(): a later run sees new values, a task changes only its copy', async () => {
      let scale = 2;
      const counter = { n: 0 };
      const task = (x: number) => {
        counter.n += 1;
        return x * scale;
      };
      assert.deepEqual(await parallel.run([1, 2].map((x) => delayed(task)(x))), [2, 4]);
      scale = 5;
      assert.deepEqual(await parallel.run([1, 2].map((x) => delayed(task)(x))), [5, 10]);
      assert.equal(counter.n, 0);
    });

    test('a capture that cannot travel is refused before anything runs, naming it; the pool stays usable', async () => {
      const cache = new WeakMap<object, number>();
      let ran = false;
      const uses = (x: number) => {
        ran = true;
        return cache.has({}) ? x : -x;
      };
      await assert.rejects(parallel.run([1, 2].map((x) => delayed(uses)(x))), (error: unknown) => {
        assert.ok(error instanceof UncapturableValueError);
        assert.equal(error.variable, 'cache');
        assert.equal(error.valueType, 'a WeakMap');
        assert.equal(error.functionName, 'uses');
        assert.match(error.message, /uses `cache` \(a WeakMap\)/);
        assert.match(error.message, /by-value\.test\.ts:\d+:\d+/);
        assert.match(error.message, /Fix: /);
        return true;
      });
      assert.equal(ran, false);
      const nested = { settings: { cache } };
      await assert.rejects(
        parallel.run([delayed((x: number) => (nested.settings.cache ? x : 0))(1)]),
        /whose `nested\.settings\.cache` is a WeakMap/,
      );
      assert.deepEqual(await parallel.run([1, 2].map((x) => delayed((y: number) => y + factor)(x))), [4, 5]);
    });

    test('a throw keeps its class, message and fields, and its stack names this file and line', async () => {
      const line = readFileSync(fileURLToPath(import.meta.url), 'utf8')
        .split('\n')
        .findIndex((text) => text.includes('// THROW-LINE') && text.includes('throw new'));
      // One failing task: which of several fails first would depend on the workers' timing.
      await assert.rejects(parallel.run([0, 1, 2, 3].map((x) => delayed(failAbove)(x))), (error: unknown) => {
        assert.ok(error instanceof LimitError, `a ${(error as Error).constructor.name}`);
        assert.equal(error.message, '3 is above 2');
        assert.equal(error.limit, 2);
        assert.match(error.stack ?? '', new RegExp(`by-value\\.test\\.ts:${line + 1}:\\d+`), error.stack);
        assert.doesNotMatch(error.stack ?? '', /joblib-ts-by-value/);
        return true;
      });
    });
  });
}
