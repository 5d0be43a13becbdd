import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot, runTsx, tempDir } from '../helpers.ts';

interface Outcome {
  path: string;
  ok: boolean;
  name?: string;
  code?: string;
  message?: string;
}

describe('the cache folder', () => {
  test('an unwritable or special path fails at once with a MemoryError naming it; a good one is only checked', async () => {
    const dir = tempDir();
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    // /proc/forbidden made Node's recursive mkdirSync loop forever.
    const paths = ['/proc/forbidden', '/proc/forbidden/deeper', '/proc', file, join(file, 'sub')];
    if (existsSync('/sys/kernel')) paths.push('/sys/kernel/joblib-ts-cache');
    const readOnly = join(dir, 'read-only');
    mkdirSync(readOnly);
    chmodSync(readOnly, 0o500);
    // root writes anywhere whatever the mode bits: the read-only folder only tells for other users.
    if (process.getuid?.() !== 0) paths.push(readOnly, join(readOnly, 'sub'));
    const good = join(dir, 'made', 'two', 'levels');
    // In a child program: a regression hangs the child, not the test run.
    const program = join(repoRoot, 'test/fixtures/programs/memory-location.ts');
    const run = await runTsx(program, { timeoutMs: 60_000, args: [...paths, good] });
    chmodSync(readOnly, 0o700);
    assert.equal(run.timedOut, false, 'new Memory() hung');
    assert.equal(run.code, 0, run.stderr);
    const outcomes = JSON.parse(run.stdout) as Outcome[];
    assert.equal(outcomes.length, paths.length + 1);
    for (const outcome of outcomes.slice(0, -1)) {
      assert.equal(outcome.ok, false, `${outcome.path} was accepted`);
      assert.equal(outcome.name, 'MemoryError', outcome.message);
      assert.equal(outcome.code, 'ERR_MEMORY_LOCATION');
      assert.ok(outcome.message?.includes(`cannot use ${outcome.path} as the cache folder`), outcome.message);
    }
    assert.deepEqual(outcomes.at(-1), { path: good, ok: true });
    // Accepted, and nothing written yet: the folder is made before the first entry (see full-disk.test.ts).
    assert.equal(existsSync(good), false);
  });
});
