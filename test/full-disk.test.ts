/**
 * A full disk gives errors that say so: `Memory` and `dump` on a 1 MB tmpfs filled to the brim. The
 * constructor writes nothing; every write failure of a cached call is a `MemoryError` naming the folder
 * and `ENOSPC` (or, with `onStoreError: 'warn'`, a warning and the computed value); `dump` gives a
 * `PersistError` and leaves no temp file. Needs a tmpfs mount (root here and in CI); elsewhere it says so
 * loudly and skips.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dump, Memory, MemoryError, PersistError } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const mountPoint = tempDir('joblib-ts-full-');
let mounted = false;

function fill(dir: string): void {
  const block = Buffer.alloc(64 * 1024, 1);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dir, `filler-${i}`), block);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return;
      throw error;
    }
  }
}

describe('a full disk', () => {
  before(() => {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { stdio: 'pipe' });
      mounted = true;
      mkdirSync(join(mountPoint, 'out'));
      fill(mountPoint);
    } catch (error) {
      process.stderr.write(
        `\n*** full-disk tests SKIPPED: cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]}) ***\n\n`,
      );
    }
  });
  after(() => {
    if (mounted) execFileSync('umount', [mountPoint]);
  });

  test('Memory: the constructor writes nothing; a cached call says ENOSPC and the folder', async (t) => {
    if (!mounted) return t.skip('no tmpfs');
    const location = join(mountPoint, 'cache');
    const memory = new Memory(location);
    assert.equal(existsSync(location), false, 'new Memory() created nothing');
    let calls = 0;
    const cube = memory.cache(
      (x: number) => {
        calls++;
        return x ** 3;
      },
      { name: 'cube' },
    );
    await assert.rejects(cube(3), (error: unknown) => {
      assert.ok(error instanceof MemoryError, String(error));
      assert.equal(error.code, 'ERR_MEMORY_STORE');
      assert.equal(error.systemCode, 'ENOSPC');
      assert.match(error.message, /no space left on the device \(ENOSPC\)/);
      assert.ok(error.message.includes(location), error.message);
      return true;
    });
    assert.equal(calls, 0, "with onStoreError: 'throw' the call fails before computing");
  });

  test("Memory: onStoreError 'warn' computes and returns the value, with warnings", async (t) => {
    if (!mounted) return t.skip('no tmpfs');
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    try {
      const memory = new Memory(join(mountPoint, 'cache-warn'));
      const square = memory.cache((x: number) => x * x, { name: 'square', onStoreError: 'warn' });
      assert.equal(await square(7), 49);
      assert.equal(await square(8), 64);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      assert.ok(
        warnings.some((w) => /cannot write the cache folder .*ENOSPC/.test(w)),
        warnings.join('\n'),
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('dump: a PersistError with ENOSPC and the path, and no temp file left', async (t) => {
    if (!mounted) return t.skip('no tmpfs');
    const file = join(mountPoint, 'out', 'big.jlts');
    await assert.rejects(dump(new Float64Array(512 * 1024), file), (error: unknown) => {
      assert.ok(error instanceof PersistError, String(error));
      assert.equal(error.code, 'ERR_DUMP_WRITE');
      assert.equal(error.systemCode, 'ENOSPC');
      assert.equal(error.path, file);
      assert.match(error.message, /dump: cannot write .*big\.jlts: no space left on the device \(ENOSPC\)/);
      return true;
    });
    assert.deepEqual(readdirSync(join(mountPoint, 'out')), []);
  });
});

test('temp files of a killed writer are removed by the next writer, after a grace period', async () => {
  const dir = tempDir();
  const deadPid = 2 ** 22 + 12345; // above Linux's pid_max default: no such process
  const old = join(dir, `value.jlts.${deadPid}-0-1-abc123.tmp`);
  const fresh = join(dir, `other.jlts.${deadPid}-0-2-def456.tmp`);
  const mine = join(dir, `mine.jlts.${process.pid}-0-3-aaa111.tmp`);
  for (const path of [old, fresh, mine]) writeFileSync(path, 'partial');
  const twoMinutesAgo = new Date(Date.now() - 120_000);
  utimesSync(old, twoMinutesAgo, twoMinutesAgo);
  utimesSync(mine, twoMinutesAgo, twoMinutesAgo);
  await dump({ a: 1 }, join(dir, 'value.jlts'));
  const left = readdirSync(dir).sort();
  // The dead writer's old file is gone; its fresh one (grace period) and this process's own stay.
  assert.deepEqual(
    left,
    [`mine.jlts.${process.pid}-0-3-aaa111.tmp`, `other.jlts.${deadPid}-0-2-def456.tmp`, 'value.jlts'].sort(),
  );
  rmSync(dir, { recursive: true, force: true });
});
