/**
 * A result or argument that would arrive without its class (a Hash, a class instance, a native handle)
 * is refused with an error naming the task (issue 14, item 6); plain data still travels.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { delayed, Parallel, UnsendableArgumentError } from '../../src/index.ts';
import { unclonableReason } from '../../src/wire/clonable.ts';
import { echo, makeHash, makePoint, Point, plainData, wrapPoint } from '../fixtures/clone-tasks.ts';
import { square } from '../fixtures/tasks.ts';

describe('unclonableReason', () => {
  test('lets plain data through', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    for (const [i, value] of [
      1,
      'text',
      null,
      undefined,
      10n,
      [1, [2, { a: 3 }]],
      { a: { b: [new Date(0)] } },
      new Map([[{ k: 1 }, new Set([1])]]),
      new Float64Array(4),
      new Int32Array(new SharedArrayBuffer(8)),
      Buffer.from('x'),
      new ArrayBuffer(8),
      new DataView(new ArrayBuffer(8)),
      new TypeError('x'),
      /re/,
      Object.create(null),
      cyclic,
      plainData(3),
    ].entries()) {
      assert.equal(unclonableReason(value), undefined, `value ${i}`);
    }
  });

  test('refuses what would lose its class, and says where it is', () => {
    assert.match(unclonableReason(createHash('sha1')) ?? '', /^it is a Hash, an instance of a class/);
    assert.match(unclonableReason(new Point(1, 2)) ?? '', /^it is a Point/);
    assert.match(
      unclonableReason({ items: [0, { hash: createHash('md5') }] }) ?? '',
      /^items\[1\]\.hash is a Hash/,
    );
    assert.match(unclonableReason(new Map([['k', new Point(0, 0)]])) ?? '', /^<Map value 0> is a Point/);
    assert.match(
      unclonableReason(Object.create({ inherited: 1 })) ?? '',
      /prototype is not Object\.prototype/,
    );
  });
});

for (const backend of ['threads', 'processes'] as const) {
  describe(`values that would lose their class, on ${backend}`, () => {
    const parallel = new Parallel({ nJobs: 2, backend });

    test('a Hash returned by a task is refused, naming the task, not turned into { _options }', async () => {
      await assert.rejects(parallel.run([delayed(square)(2), delayed(makeHash)('abc')]), (error: unknown) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, /^Task 1 \(makeHash\): The result of this task cannot be sent back/);
        assert.match(error.message, /it is a Hash, an instance of a class/);
        assert.equal((error as { taskIndex?: number }).taskIndex, 1);
        return true;
      });
    });

    test('a class instance returned by a task, at any depth, is refused', async () => {
      await assert.rejects(parallel.run([delayed(makePoint)(3)]), /Task 0 \(makePoint\).*it is a Point/);
      await assert.rejects(
        parallel.run([delayed(wrapPoint)(3)]),
        /Task 0 \(wrapPoint\).*points\[0\] is a Point/,
      );
    });

    test('a Hash as an argument is refused before it is sent; a Point of our own keeps its class', async () => {
      // Since functions and classes travel (issue 13), an instance of a user class arrives as that class.
      const [point] = await parallel.run([delayed(echo)({ where: new Point(1, 1) })]);
      assert.ok((point as { where: unknown }).where instanceof Point);
      for (const [value, what] of [[createHash('sha1'), /it is a Hash/]] as const) {
        await assert.rejects(parallel.run([delayed(square)(1), delayed(echo)(value)]), (error: unknown) => {
          assert.ok(error instanceof UnsendableArgumentError, String(error));
          assert.equal(error.taskIndex, 1);
          assert.equal(error.argumentIndex, 0);
          assert.match(error.message, /^Task 1 \(echo\): argument 0/);
          assert.match(error.message, what);
          return true;
        });
      }
    });

    test('plain data still travels both ways', async () => {
      // Errors are compared by class and message: their stacks differ by where they were made.
      const withoutError = (value: unknown) => {
        const { error, ...rest } = value as { error: Error };
        assert.ok(error instanceof RangeError);
        return { ...rest, error: error.message };
      };
      const [back] = await parallel.run([delayed(echo)(plainData(4))]);
      assert.deepEqual(withoutError(back), withoutError(plainData(4)));
      const [made] = await parallel.run([delayed(plainData)(5)]);
      assert.deepEqual(withoutError(made), withoutError(plainData(5)));
      await parallel.close();
    });
  });
}

test('nJobs: 1 runs in this thread: a Hash comes back as the real Hash', async () => {
  const [hash] = await new Parallel({ nJobs: 1 }).run([delayed(makeHash)('abc')]);
  assert.equal(hash.digest('hex'), createHash('sha1').update('abc').digest('hex'));
  const [point] = (await new Parallel({ nJobs: 1 }).run([delayed(echo)(new Point(3, 4))])) as [Point];
  assert.equal(point.norm(), 5);
});
