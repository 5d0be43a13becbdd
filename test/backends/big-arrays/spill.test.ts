import assert from 'node:assert/strict';
import { existsSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SpillFiles } from '../../../src/backends/big-arrays/spill-files.ts';
import { isSpilled } from '../../../src/wire/spilled-array.ts';
import { SpillReader } from '../../../src/worker/spill-reader.ts';
import { tempDir } from '../../helpers.ts';

describe('spill files (big arrays for worker processes)', () => {
  test('a root that refuses a folder is skipped; the run end removes its files', () => {
    const dir = tempDir();
    const notAFolder = join(dir, 'plain-file');
    writeFileSync(notAFolder, 'x');
    const spills = new SpillFiles([notAFolder, dir]);
    const values = new Float64Array(1000).map((_, i) => i / 3);
    const spilled = spills.spill(7, values);
    assert.ok(isSpilled(spilled), 'written to the second root');
    assert.ok(spilled.path.startsWith(dir) && existsSync(spilled.path));
    assert.equal(spills.spill(7, values), spilled, 'one file per array and run');
    const restored = new SpillReader().restore(7, [spilled, 'kept', 42]);
    assert.deepEqual(restored.slice(1), ['kept', 42]);
    assert.ok(restored[0] instanceof Float64Array);
    assert.deepEqual([...(restored[0] as Float64Array)], [...values]);
    spills.endRun(7);
    assert.equal(existsSync(spilled.path), false, 'removed when the run ends');
  });

  test('with no root that takes the file, the array itself is sent (through the pipe)', () => {
    const dir = tempDir();
    const notAFolder = join(dir, 'plain-file');
    writeFileSync(notAFolder, 'x');
    const spills = new SpillFiles([notAFolder, join(notAFolder, 'below')]);
    const values = new Int16Array(64);
    assert.equal(spills.spill(1, values), values);
    assert.deepEqual(readdirSync(dir), ['plain-file'], 'nothing half-written anywhere');
  });

  test('a worker reads each file once per run, keeps the element type, and names a cut-short file', () => {
    const dir = tempDir();
    const spills = new SpillFiles([dir]);
    const bytes = new Uint8Array(4097).map((_, i) => i % 256).subarray(1);
    const ints = new Int32Array([1, -2, 3]);
    const reader = new SpillReader();
    const a = spills.spill(1, bytes);
    const b = spills.spill(1, ints);
    const [first] = reader.restore(1, [a]);
    const [again, third] = reader.restore(1, [a, b]);
    assert.equal(first, again, 'the same array for every task of the run');
    assert.deepEqual([...(first as Uint8Array)], [...bytes]);
    assert.ok(third instanceof Int32Array);
    assert.deepEqual([...(third as Int32Array)], [1, -2, 3]);
    assert.ok(isSpilled(b));
    truncateSync(b.path, 4);
    assert.throws(
      () => reader.restore(2, [b]),
      /Int32Array, 12 bytes\) was cut short in transit: read 4 bytes/,
    );
    spills.endRun(1);
  });
});
