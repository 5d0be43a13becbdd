/**
 * Type-level tests: this file must type-check (`npm run typecheck`); each `@ts-expect-error` line
 * must be an error, or the check fails because the directive is unused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { delayed, Parallel, type Task } from '../src/index.ts';
import { describeTypes, slowSquare, square } from './fixtures/tasks.ts';

function expectType<T>(_value: T): void {}

test('delayed checks arguments and run returns the awaited result types', async () => {
  const p = new Parallel({ nJobs: 1 });

  // @ts-expect-error: square takes a number
  delayed(square)('seven');
  // @ts-expect-error: square takes one argument
  delayed(square)(1, 2);
  // @ts-expect-error: slowSquare needs its second argument
  delayed(slowSquare)(1);

  const task = delayed(slowSquare)(3, 1);
  expectType<Task<number>>(task);

  const numbers = await p.run([1, 2, 3].map((x) => delayed(square)(x)));
  expectType<number[]>(numbers);
  // @ts-expect-error: the results are numbers, not strings
  expectType<string[]>(numbers);

  const asyncResults = await p.run([delayed(slowSquare)(2, 1)]);
  expectType<[number]>(asyncResults);

  const mixed = await p.run([delayed(square)(2), delayed(describeTypes)(new Map())]);
  expectType<[number, string]>(mixed);

  function* generated() {
    yield delayed(square)(4);
  }
  const fromGenerator = await p.run(generated());
  expectType<number[]>(fromGenerator);

  assert.deepEqual(mixed, [4, 'Map(0)']);
  assert.deepEqual(fromGenerator, [16]);
});
