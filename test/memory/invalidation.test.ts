import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const memoryModule = new URL('../../src/memory/index.ts', import.meta.url).href;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'joblib-ts-invalidation-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A program that caches `work` and calls it on 1 and 2; `body` is the function's return expression. */
function program(body: string): string {
  return `import { appendFileSync } from 'node:fs';
import { Memory } from ${JSON.stringify(memoryModule)};

export function work(x: number): number {
  appendFileSync(process.env.COUNTER as string, 'ran ' + x + '\\n');
  return ${body};
}

const memory = new Memory(process.env.CACHE_DIR as string);
export const cachedWork = memory.cache(work);
const out: number[] = [];
for (const x of [1, 2]) out.push(await cachedWork(x));
process.stdout.write(JSON.stringify(out));
`;
}

function runProgram(file: string, counter: string, cache: string): Promise<{ out: unknown; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', file],
      { cwd: repoRoot, env: { ...process.env, COUNTER: counter, CACHE_DIR: cache }, encoding: 'utf8' },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ out: JSON.parse(stdout), stderr }),
    );
  });
}

describe('Memory across runs of a program', () => {
  it('reuses entries in a new process and invalidates them when the function source changes, saying so once', async () => {
    const file = join(dir, 'task.mts');
    const counter = join(dir, 'counter.txt');
    const cache = join(dir, 'cache');
    const runs = () =>
      existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0;

    await writeFile(file, program('x * 2'));
    assert.deepStrictEqual((await runProgram(file, counter, cache)).out, [2, 4]);
    assert.equal(runs(), 2);
    const second = await runProgram(file, counter, cache);
    assert.deepStrictEqual(second.out, [2, 4]);
    assert.equal(runs(), 2, 'second run: all hits');
    assert.doesNotMatch(second.stderr, /code changed/);

    await writeFile(file, program('x * 3'));
    const edited = await runProgram(file, counter, cache);
    assert.deepStrictEqual(edited.out, [3, 6], 'never the stale result');
    assert.equal(runs(), 4, 'both entries recomputed');
    assert.equal(edited.stderr.match(/work: the function's code changed/g)?.length, 1, edited.stderr);

    const after = await runProgram(file, counter, cache);
    assert.deepStrictEqual(after.out, [3, 6]);
    assert.equal(runs(), 4);
    assert.doesNotMatch(after.stderr, /code changed/);

    // Rolling back the edit finds the old entries again (kept under their code version).
    await writeFile(file, program('x * 2'));
    const rolledBack = await runProgram(file, counter, cache);
    assert.deepStrictEqual(rolledBack.out, [2, 4]);
    assert.equal(runs(), 4, 'old entries were kept');
    assert.match(rolledBack.stderr, /code changed/);
  });
});
