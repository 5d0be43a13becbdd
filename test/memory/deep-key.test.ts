/**
 * The code version covers what a cached function reaches: a helper edited two calls deep invalidates its
 * entries, an edit to an unrelated function of the same files does not, a package's new version does;
 * `version` still overrides and `deepKey: false` turns it off. Each run is a new process on a rewritten
 * temp project, as a user's edit-and-rerun is.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot, runTsx, tempDir } from '../helpers.ts';

const memoryModule = join(repoRoot, 'src/memory/index.ts');
const deepCodeModule = join(repoRoot, 'src/memory/deep-code.ts');

interface RunOut {
  value: number;
  reason: string;
  message: string;
  /** Function sources the run parsed (0: every one was known from the facts stored by an earlier run). */
  parsed: number;
}

function mainSource(options: string): string {
  return `import { appendFileSync } from 'node:fs';
import { Memory } from ${JSON.stringify(memoryModule)};
import { parsedSourceCount } from ${JSON.stringify(deepCodeModule)};
import { helperA } from './helpers-a.ts';
import { scale } from 'fakepkg';

export function unrelatedInMain(): number {
  return 1;
}

export function compute(x: number): number {
  appendFileSync(process.env.COUNTER ?? '', 'run\\n');
  return helperA(x) + scale(0);
}

const cached = new Memory(process.env.CACHE_DIR ?? '').cache(compute, ${options});
const why = await cached.explain(3);
const value = await cached(3);
process.stdout.write(JSON.stringify({ value, reason: why.reason, message: why.message, parsed: parsedSourceCount() }));
`;
}

const helpersA = `import { helperB } from './helpers-b.ts';
export function helperA(x: number): number {
  return helperB(x) + 1;
}
`;

function helpersB(body: string, unrelated: string): string {
  return `export const FACTOR = 10;

export function unrelatedInB(): number {
  return ${unrelated};
}

export function helperB(x: number): number {
  return ${body};
}
`;
}

async function project(
  options = '{}',
): Promise<{ dir: string; run: () => Promise<RunOut>; runs: () => number }> {
  const dir = tempDir('joblib-ts-deep-key-');
  await writeFile(join(dir, 'package.json'), '{ "name": "deep-key-app", "type": "module" }\n');
  await writeFile(join(dir, 'main.ts'), mainSource(options));
  await writeFile(join(dir, 'helpers-a.ts'), helpersA);
  await writeFile(join(dir, 'helpers-b.ts'), helpersB('x * FACTOR', '1'));
  await setPackageVersion(dir, '1.0.0');
  const counter = join(dir, 'counter.txt');
  const run = async (): Promise<RunOut> => {
    const res = await runTsx(join(dir, 'main.ts'), {
      cwd: dir,
      timeoutMs: 120_000,
      env: { COUNTER: counter, CACHE_DIR: join(dir, 'cache') },
    });
    assert.equal(res.code, 0, res.stderr);
    return JSON.parse(res.stdout) as RunOut;
  };
  const runs = () =>
    existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0;
  return { dir, run, runs };
}

async function setPackageVersion(dir: string, version: string): Promise<void> {
  const pkg = join(dir, 'node_modules', 'fakepkg');
  await mkdir(pkg, { recursive: true });
  await writeFile(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'fakepkg', version, type: 'module', main: 'index.js' }),
  );
  await writeFile(join(pkg, 'index.js'), 'export function scale(x) { return x * 2; }\n');
}

describe('deep code keys, in one process', () => {
  it('a function made by new Function (no file) is still keyed by its source', async () => {
    const { Memory } = await import('../../src/memory/index.ts');
    const memory = new Memory(join(tempDir('joblib-ts-deep-key-'), 'cache'));
    const double = memory.cache(new Function('x', 'return x * 2') as (x: number) => number, { name: 'f' });
    assert.equal(await double(5), 10);
    const triple = memory.cache(new Function('x', 'return x * 3') as (x: number) => number, { name: 'f' });
    assert.equal((await triple.explain(5)).reason, 'code-changed');
    assert.equal(await triple(5), 15);
  });
});

describe('deep code keys, across runs of a program', () => {
  it('a helper edited two calls deep invalidates, naming it; an unrelated edit in the same files does not', async () => {
    const { dir, run, runs } = await project();
    const first = await run();
    assert.deepStrictEqual([first.value, first.reason, runs()], [31, 'new-arguments', 1]);
    assert.ok(first.parsed >= 3, `compute, helperA and helperB parsed (${first.parsed})`);
    const second = await run();
    assert.deepStrictEqual([second.value, second.reason, runs()], [31, 'hit', 1]);
    assert.equal(second.parsed, 0, 'nothing parsed again: the facts stored by the first run cover it');

    // Unrelated functions in both files the function reaches: still a hit.
    await writeFile(join(dir, 'helpers-b.ts'), helpersB('x * FACTOR', '2 + 2'));
    await writeFile(join(dir, 'main.ts'), mainSource('{}').replace('return 1;', 'return 42;'));
    const unrelated = await run();
    assert.deepStrictEqual([unrelated.value, unrelated.reason, runs()], [31, 'hit', 1]);
    assert.equal(unrelated.parsed, 0);

    // helperB, reached through helperA: a miss that names it and where it is.
    await writeFile(join(dir, 'helpers-b.ts'), helpersB('x * FACTOR * 2', '2 + 2'));
    const edited = await run();
    assert.deepStrictEqual([edited.value, edited.reason, runs()], [61, 'code-changed', 2]);
    assert.equal(edited.parsed, 1, 'only the edited helper is parsed again');
    assert.match(edited.message, /function helperB \(.*helpers-b\.ts:7:\d+\) changed/);
    assert.doesNotMatch(edited.message, /helperA|unrelated/);

    // A package's new version: a miss that says which.
    await setPackageVersion(dir, '1.0.1');
    const bumped = await run();
    assert.deepStrictEqual([bumped.value, bumped.reason, runs()], [61, 'dependency-changed', 3]);
    assert.match(bumped.message, /fakepkg@1\.0\.0 -> fakepkg@1\.0\.1/);
  });

  it('a constant the helper reads counts too', async () => {
    const { dir, run, runs } = await project();
    await run();
    await writeFile(
      join(dir, 'helpers-b.ts'),
      helpersB('x * FACTOR', '1').replace('FACTOR = 10', 'FACTOR = 20'),
    );
    const edited = await run();
    assert.deepStrictEqual([edited.value, edited.reason, runs()], [61, 'code-changed', 2]);
    assert.match(edited.message, /constant FACTOR .* changed/);
  });

  it('version overrides the deep key, and deepKey: false keys the source alone', async () => {
    for (const options of ["{ version: '1' }", '{ deepKey: false }']) {
      const { dir, run, runs } = await project(options);
      await run();
      await writeFile(join(dir, 'helpers-b.ts'), helpersB('x * FACTOR * 2', '1'));
      await setPackageVersion(dir, '2.0.0');
      const edited = await run();
      assert.deepStrictEqual(
        [edited.value, edited.reason, runs()],
        [31, 'hit', 1],
        `${options}: stale by choice`,
      );
    }
  });
});
