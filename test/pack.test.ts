/**
 * What we publish is what we test: pack the package, install the tarball into a fresh project and run
 * parallel calls from it with plain Node (no tsx, no access to this repository's sources).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, runProgram, tempDir } from './helpers.ts';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('the packed tarball installs and runs a parallel loop on threads and processes', {
  timeout: 240_000,
}, async () => {
  const work = tempDir('joblib-ts-pack-');
  if (!existsSync(join(repoRoot, 'dist/index.js'))) {
    const build = await runProgram(npm, ['run', 'build'], { timeoutMs: 120_000 });
    assert.equal(build.code, 0, build.stderr);
  }
  const pack = await runProgram(npm, ['pack', '--ignore-scripts', '--pack-destination', work], {
    timeoutMs: 60_000,
  });
  assert.equal(pack.code, 0, pack.stderr);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, `no tarball in ${work}`);

  const project = join(work, 'project');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  writeFileSync(join(project, 'work.js'), 'export function square(x) { return x * x; }\n');
  writeFileSync(
    join(project, 'main.js'),
    [
      "import { Parallel, delayed, isMainProgram, cpuCount } from 'joblib-ts';",
      "import { square } from './work.js';",
      'export const cube = (x) => x * x * x;',
      'if (isMainProgram(import.meta)) {',
      '  const threads = await new Parallel({ nJobs: 2 }).run([1, 2, 3].map((x) => delayed(square)(x)));',
      "  const processes = await new Parallel({ nJobs: 2, backend: 'processes' }).run([4, 5].map((x) => delayed(cube)(x)));",
      '  console.log(JSON.stringify({ threads, processes, cpus: cpuCount() > 0 }));',
      '}',
      '',
    ].join('\n'),
  );
  const install = await runProgram(
    npm,
    ['install', join(work, tarball), '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'],
    { cwd: project, timeoutMs: 180_000 },
  );
  assert.equal(install.code, 0, install.stderr);
  assert.ok(
    existsSync(join(project, 'node_modules/joblib-ts/dist/index.d.ts')),
    'declarations are published',
  );
  assert.ok(!existsSync(join(project, 'node_modules/joblib-ts/src')), 'sources stay out of the package');

  const run = await runProgram(process.execPath, ['main.js'], { cwd: project, timeoutMs: 60_000 });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { threads: [1, 4, 9], processes: [64, 125], cpus: true });
});
