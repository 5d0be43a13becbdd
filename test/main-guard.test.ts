import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot, runTsx } from './helpers.ts';

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
      // Workers import the file (so its top level runs there too), but the guarded part runs once.
      assert.equal(run.stdout.match(/top level ran in main/g)?.length, 1);
      assert.equal(run.stdout.match(/result/g)?.length, 1);
    });

    test('an unguarded entry file fails with the rule, and never runs the program twice', async () => {
      const run = await runTsx(join(programs, 'unguarded-entry.ts'), {
        timeoutMs: 60_000,
        env: { BACKEND: backend },
      });
      assert.equal(run.timedOut, false);
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /MainGuardError/);
      assert.match(run.stderr, /double is defined in the program's entry file/);
      assert.match(run.stderr, /if \(isMainProgram\(import\.meta\)\) \{/);
      assert.equal(run.stdout.match(/PROGRAM STARTED/g)?.length, 1);
      assert.doesNotMatch(run.stdout, /result/);
    });
  });
}

test('a program exits by itself after run(), without close()', async () => {
  const run = await runTsx(join(programs, 'exits-by-itself.ts'), { timeoutMs: 30_000 });
  assert.equal(run.timedOut, false, 'the program was still running after 30 s');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /done \[1,4,9,16,25\]/);
});
