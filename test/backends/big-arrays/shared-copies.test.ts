import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KEEP_IDLE_MS, SharedCopies } from '../../../src/backends/big-arrays/shared-copies.ts';

describe('shared copies of big arrays (threads)', () => {
  test('one copy per run; a later run reuses the same memory with the array’s new contents', () => {
    const copies = new SharedCopies();
    const values = new Float64Array([1, 2, 3]);
    const first = copies.acquire(1, values) as Float64Array;
    assert.ok(first.buffer instanceof SharedArrayBuffer);
    assert.equal(copies.acquire(1, values), first, 'the same copy for every task of the run');
    copies.release(1);
    values[0] = 10;
    const second = copies.acquire(2, values) as Float64Array;
    assert.equal(second.buffer, first.buffer, 'the same shared memory');
    assert.deepEqual([...second], [10, 2, 3]);
    copies.release(2);
    copies.sweep();
  });

  test('a run never rewrites a copy that another run is reading', () => {
    const copies = new SharedCopies();
    const values = new Int32Array([1, 1]);
    const reading = copies.acquire(1, values) as Int32Array;
    values.fill(2);
    const other = copies.acquire(2, values) as Int32Array;
    assert.notEqual(other.buffer, reading.buffer);
    assert.deepEqual([...reading], [1, 1]);
    assert.deepEqual([...other], [2, 2]);
    copies.release(2);
    assert.equal(copies.idleCount, 0, "the busy run's private copy is not kept");
    copies.release(1);
    assert.equal(copies.idleCount, 1);
    copies.sweep();
  });

  test('an idle copy is let go after KEEP_IDLE_MS, and a new run then makes a fresh one', () => {
    const copies = new SharedCopies();
    const values = new Uint8Array(16).fill(7);
    const first = copies.acquire(1, values);
    copies.release(1);
    copies.sweep(performance.now() + KEEP_IDLE_MS / 2);
    assert.equal(copies.idleCount, 1, 'still kept before the delay');
    copies.sweep(performance.now() + KEEP_IDLE_MS + 1);
    assert.equal(copies.idleCount, 0);
    const again = copies.acquire(2, values) as Uint8Array;
    assert.notEqual(again.buffer, first.buffer);
    assert.deepEqual([...again], new Array(16).fill(7));
    copies.release(2);
    copies.sweep(performance.now() + KEEP_IDLE_MS + 1);
  });
});
