/**
 * The seed notebook in TypeScript (`examples/seed-tutorial.ipynb`) runs top to bottom under Jupyter with
 * the tslab kernel, headless (`jupyter nbconvert --execute`), its functions defined in cells running in
 * workers by value. It needs Jupyter (Debian: jupyter-nbconvert, python3-ipykernel) and tslab (npm):
 * `.ci/run` installs them; where they are missing this test says so loudly and is skipped.
 *
 * The notebook runs in a fresh folder as a user's would: `joblib-ts` (this repository, built) and
 * `@types/node` in its node_modules, a kernel spec of its own, smaller arrays (JOBLIB_TS_NOTEBOOK_SCALE).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { repoRoot, runProgram, tempDir } from './helpers.ts';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** tslab: JOBLIB_TS_TSLAB, else the copy `.ci/run` installs under .tools/, else one on the PATH. */
function findTslab(): string | undefined {
  const candidates = [
    process.env.JOBLIB_TS_TSLAB,
    join(repoRoot, '.tools/tslab/node_modules/.bin/tslab'),
    'tslab',
  ].filter((c): c is string => !!c);
  for (const candidate of candidates) {
    if (candidate.includes('/') && !existsSync(candidate)) continue;
    if (spawnSync(candidate, ['--version'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  return undefined;
}

function skipReason(): string | undefined {
  const missing: string[] = [];
  if (spawnSync('jupyter', ['nbconvert', '--version'], { encoding: 'utf8' }).status !== 0)
    missing.push('jupyter nbconvert (apt-get install jupyter-nbconvert python3-ipykernel)');
  if (!findTslab()) missing.push('tslab (npm install --prefix .tools/tslab tslab)');
  if (missing.length === 0) return undefined;
  const reason = `missing ${missing.join(' and ')}`;
  process.stderr.write(
    `\n\n*** SKIPPING the notebook test (examples/seed-tutorial.ipynb): ${reason}. .ci/run installs them. ***\n\n`,
  );
  return reason;
}

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  ename?: string;
  evalue?: string;
}
interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
}

const text = (value: string | string[] | undefined): string =>
  Array.isArray(value) ? value.join('') : (value ?? '');

const skip = skipReason();

describe('the seed notebook under Jupyter with the tslab kernel', { skip, timeout: 240_000 }, () => {
  const work = tempDir('joblib-ts-notebook-');
  const project = join(work, 'project');

  before(async () => {
    if (!existsSync(join(repoRoot, 'dist/index.cjs'))) {
      const build = await runProgram(npm, ['run', 'build'], { timeoutMs: 150_000 });
      assert.equal(build.code, 0, build.stderr);
    }
    mkdirSync(join(project, 'node_modules/@types'), { recursive: true });
    symlinkSync(repoRoot, join(project, 'node_modules/joblib-ts'));
    symlinkSync(join(repoRoot, 'node_modules/@types/node'), join(project, 'node_modules/@types/node'));
    copyFileSync(join(repoRoot, 'examples/seed-tutorial.ipynb'), join(project, 'seed-tutorial.ipynb'));
    const kernel = join(work, 'jupyter/kernels/tslab');
    mkdirSync(kernel, { recursive: true });
    writeFileSync(
      join(kernel, 'kernel.json'),
      JSON.stringify({
        argv: [findTslab(), 'kernel', '--config-path', '{connection_file}'],
        display_name: 'TypeScript',
        language: 'typescript',
      }),
    );
  });

  test('runs top to bottom, the verbose cell included, with the results of the seed', async () => {
    const jupyter = join(work, 'jupyter');
    const run = await runProgram(
      'jupyter',
      [
        'nbconvert',
        '--to',
        'notebook',
        '--execute',
        '--ExecutePreprocessor.kernel_name=tslab',
        '--ExecutePreprocessor.timeout=120',
        '--output',
        'executed.ipynb',
        'seed-tutorial.ipynb',
      ],
      {
        cwd: project,
        timeoutMs: 200_000,
        env: {
          JUPYTER_PATH: jupyter,
          JUPYTER_DATA_DIR: join(jupyter, 'data'),
          JUPYTER_RUNTIME_DIR: join(jupyter, 'runtime'),
          JUPYTER_CONFIG_DIR: join(jupyter, 'config'),
          JOBLIB_TS_NOTEBOOK_SCALE: '0.05',
        },
      },
    );
    assert.equal(run.code, 0, run.stderr);
    const notebook = JSON.parse(readFileSync(join(project, 'executed.ipynb'), 'utf8')) as { cells: Cell[] };
    const code = notebook.cells.filter((c) => c.cell_type === 'code');
    const outputs = code.map((c) =>
      (c.outputs ?? []).map((o) => text(o.text) + (o.ename ? `${o.ename}: ${o.evalue}` : '')).join(''),
    );
    for (const [i, cell] of code.entries()) {
      for (const output of cell.outputs ?? []) {
        assert.notEqual(output.output_type, 'error', `cell ${i}: ${output.ename}: ${output.evalue}`);
        assert.notEqual(output.name, 'stderr', `cell ${i} wrote to stderr: ${text(output.text)}`);
      }
    }
    const all = outputs.join('\n');
    const squares = /\[\s*0,\s*1,\s*4,\s*9,\s*16,\s*25,\s*36,\s*49,\s*64,\s*81\s*\]/g;
    assert.equal(outputs[1]?.match(squares)?.length, 2, `In [2]: ${outputs[1]}`);
    assert.match(outputs[2] ?? '', squares, 'In [3]');
    assert.match(all, /convolveRandom\(2000\): best of 3: [\d.]+ s per loop/);
    assert.match(all, /Parallel\(\{ nJobs: 8 \}\): best of 3: [\d.]+ s per loop/);
    assert.match(all, /\[Parallel\(nJobs=8\)\]: Using backend ThreadsBackend with 8 concurrent workers\./);
    assert.match(all, /\[Parallel\(nJobs=8\)\]: Done {2}16 out of {2}16 \| elapsed: .* finished/);
    assert.match(all, /16 results; the first has 3999 values/);
    assert.match(all, /^nJobs +250 +500 .* 2500\n +1 +[\d.]+/m);
  });
});
