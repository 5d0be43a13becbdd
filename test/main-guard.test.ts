import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot, runProgram, runTsx } from './helpers.ts';

const programs = join(repoRoot, 'test/fixtures/programs');

for (const backend of ['threads', 'processes']) {
  describe(`the main-program guard on ${backend}`, () => {
    test('an entry file that exports its task function runs it in workers, the program once', async () => {
      const run = await runTsx(join(programs, 'guarded-entry.ts'), {
        timeoutMs: 60_000,
        env: { BACKEND: backend },
      });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /result \[2,4,6,8\]/);
      // Its functions travel by value (workers never import the entry file); the guard keeps working.
      assert.equal(run.stdout.match(/top level ran in main/g)?.length, 1);
      assert.equal(run.stdout.match(/result/g)?.length, 1);
    });

    test('an entry file without the guard runs once and gets its results (its functions travel by value)', async () => {
      const run = await runTsx(join(programs, 'unguarded-entry.ts'), {
        timeoutMs: 60_000,
        env: { BACKEND: backend },
      });
      assert.equal(run.timedOut, false);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.match(/PROGRAM STARTED/g)?.length, 1);
      assert.equal(run.stdout.match(/result/g)?.length, 1);
      assert.match(run.stdout, /result \[2,4,6\]/);
    });

    test('the same with plain node on a .mjs entry file', async () => {
      if (!existsSync(join(repoRoot, 'dist/index.js'))) {
        const build = await runProgram('npm', ['run', 'build'], { timeoutMs: 120_000 });
        assert.equal(build.code, 0, build.stderr);
      }
      const run = await runProgram(process.execPath, [join(programs, 'unguarded-entry.mjs')], {
        timeoutMs: 60_000,
        env: { BACKEND: backend },
      });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.match(/PROGRAM STARTED/g)?.length, 1);
      assert.match(run.stdout, /result \[11,12,13\]/);
    });
  });
}

test('a program exits by itself after run(), without close()', async () => {
  const run = await runTsx(join(programs, 'exits-by-itself.ts'), { timeoutMs: 30_000 });
  assert.equal(run.timedOut, false, 'the program was still running after 30 s');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /done \[1,4,9,16,25\]/);
});
