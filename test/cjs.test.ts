/**
 * CommonJS programs (and kernels that load modules with `require`, as tslab does) use the package:
 * `require('joblib-ts')` and `require('joblib-ts/redis')` go through the exports map's `require`
 * condition to the built package, and a function defined in the `.cjs` file runs in workers by value.
 * The fixture requires the package by its name (Node's self-reference: this repository is the package).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { repoRoot, runProgram } from './helpers.ts';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const fixture = join(repoRoot, 'test/fixtures/require-package.cjs');

describe('require() from a CommonJS program', { timeout: 180_000 }, () => {
  before(async () => {
    if (!existsSync(join(repoRoot, 'dist/index.cjs'))) {
      const build = await runProgram(npm, ['run', 'build'], { timeoutMs: 150_000 });
      assert.equal(build.code, 0, build.stderr);
    }
  });

  // Node 20.19+, 22.12+ (or --experimental-require-module): the package loads.
  const canRequire = process.features.require_module !== false;
  test("require('joblib-ts') runs the file's own functions on threads and processes", {
    skip: !canRequire && 'this Node cannot require() ES modules',
  }, async () => {
    const run = await runProgram(process.execPath, [fixture], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), {
      threads: [11, 14, 19],
      processes: [27, 36],
      redis: 'function',
    });
  });

  test('where Node cannot require ES modules, the error says what to do', async () => {
    // Node 20.19+ requires ES modules unless told not to; an older Node 20 never does.
    const off = process.allowedNodeEnvironmentFlags.has('--experimental-require-module')
      ? ['--no-experimental-require-module']
      : [];
    const run = await runProgram(process.execPath, [...off, fixture], { timeoutMs: 60_000 });
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /require\('joblib-ts'\) needs require\(\) of ES modules/);
    assert.match(run.stderr, /Upgrade Node, or run node with --experimental-require-module/);
    assert.match(run.stderr, /await import\('joblib-ts'\)/);
  });
});
