import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Memory } from '../../src/memory/index.ts';
import { load } from '../../src/persist.ts';
import { heavy, runTask, type WorkerOptions, type WorkerReport } from './fixtures/cache-worker.ts';

const entry = new URL('./fixtures/cache-worker.ts', import.meta.url);
const threadBoot = new URL('./fixtures/ts-thread.mjs', import.meta.url);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
const children = new Set<ChildProcess>();
const workers = new Set<Worker>();
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'joblib-ts-concurrency-'));
});
after(async () => {
  for (const c of children) c.kill();
  await Promise.all([...workers].map((w) => w.terminate()));
  await rm(dir, { recursive: true, force: true });
});

function inProcess(options: WorkerOptions): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(entry), [JSON.stringify(options)], {
      cwd: repoRoot,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    let report: WorkerReport | undefined;
    child.on('message', (m) => {
      report = m as WorkerReport;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      children.delete(child);
      if (report && code === 0) resolve(report);
      else reject(new Error(`child exited with ${code} without a report`));
    });
  });
}

function inThread(options: WorkerOptions): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(threadBoot, { workerData: { entry: entry.href, options } });
    workers.add(worker);
    let report: WorkerReport | undefined;
    worker.on('message', (m) => {
      report = m as WorkerReport;
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      workers.delete(worker);
      if (report) resolve(report);
      else reject(new Error(`worker exited with ${code} without a report`));
    });
  });
}

const countLines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;

async function allFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath ?? (e as { path?: string }).path ?? root, e.name));
  }
  return out;
}

describe('a cache shared by processes and threads', () => {
  it('survives many writers of one entry: readers never see a partial or wrong value', async () => {
    const cacheDir = join(dir, 'one-entry');
    const counter = join(dir, 'one-entry-counter.txt');
    const options: WorkerOptions = { cacheDir, counter, items: [7], rounds: 16, overwrite: true };
    const reports = await Promise.all([
      inProcess(options),
      inProcess(options),
      inThread(options),
      inThread(options),
      runTask(options),
    ]);
    for (const r of reports) {
      assert.deepStrictEqual(r.bad, [], `${r.who} read wrong data`);
      assert.deepStrictEqual(r.warnings, [], `${r.who} saw damaged entries`);
      assert.equal(r.checked, 16);
    }
    assert.ok(countLines(counter) >= 5 * 8, 'every forced round really recomputed and rewrote the entry');
    const files = await allFiles(cacheDir);
    assert.deepStrictEqual(
      files.filter((f) => f.endsWith('.tmp')),
      [],
      'no temp files left',
    );
    const entries = files.filter((f) => f.endsWith('.jlts'));
    assert.equal(entries.length, 1);
    const value = await load<ReturnType<typeof heavy>>(entries[0] ?? '');
    assert.equal(value.seed, 7);
    assert.equal(value.data[199_999], 7e6 + 199_999);
  });

  it('serves entries computed by other processes and threads', async () => {
    const cacheDir = join(dir, 'shared');
    const counter = join(dir, 'shared-counter.txt');
    const items = [1, 2, 3, 4, 5, 6];
    const options: WorkerOptions = { cacheDir, counter, items, rounds: 2, overwrite: false };
    const reports = await Promise.all([
      inProcess(options),
      inThread(options),
      inThread({ ...options, items: [...items].reverse() }),
    ]);
    for (const r of reports) {
      assert.deepStrictEqual(r.bad, []);
      assert.deepStrictEqual(r.warnings, []);
    }
    const computed = countLines(counter);
    assert.ok(computed >= 6 && computed <= 18, `computed ${computed} times`);
    // Everything is now in the cache: this process only reads.
    const cached = new Memory(cacheDir).cache(heavy);
    process.env.JOBLIB_TS_TEST_COUNTER = counter;
    for (const x of items) {
      assert.equal(await cached.checkCallInCache(x), true);
      assert.equal((await cached(x)).data[5], x * 1e6 + 5);
    }
    assert.equal(countLines(counter), computed, 'no recomputation: all hits');
  });
});
