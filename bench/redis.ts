/**
 * Redis backend benchmarks (issue 7): `npx tsx bench/redis.ts` with Redis at REDIS_URL (default
 * redis://127.0.0.1:6379). Starts its own worker processes (the worker command) on a fresh key prefix and
 * removes every key it made.
 *
 *  1. trivial tasks with auto batching through Redis, two local workers: tasks/s (target >= 100,000)
 *  2. one empty task per run: add-to-result round trip, median ms
 *  3. the seed's 16 convolutions of size 20,000: redis vs the processes backend (target <= 1.3x)
 *  4. default lock and stall settings: time from a worker's SIGKILL until its tasks run elsewhere (target <= 10 s)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { delayed, isMainProgram, Parallel } from '../src/index.ts';
import { convolveRandom } from '../src/workloads/convolve.ts';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const prefix = `jt-bench-${process.pid}`;

/** A task that does nothing, for the overhead measurements. */
export function nothing(x: number): number {
  return x;
}

/** Logs `index ppid startMs` when a task starts, then sleeps: to see where the tasks of a killed worker went. */
export async function loggedSleep(log: string, index: number, ms: number): Promise<number> {
  appendFileSync(log, `${index} ${process.ppid} ${Date.now()}\n`);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return index;
}

interface Worker {
  child: ChildProcess;
  exited: Promise<void>;
}

const workers = new Set<Worker>();

async function startWorkers(
  queue: string,
  count: number,
  concurrency: number,
  extra: string[] = [],
): Promise<Worker[]> {
  const redis = new Redis(REDIS_URL);
  const registry = `${prefix}:${queue}:jt:workers`;
  const before = new Set(await redis.smembers(registry));
  const started: Worker[] = [];
  for (let i = 0; i < count; i++) {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'src/cli/worker-main.ts'),
        ...['--redis', REDIS_URL, '--root', root, '--queue', queue, '--prefix', prefix],
        ...['--concurrency', String(concurrency), '--quiet', ...extra],
      ],
      { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const worker = { child, exited: new Promise<void>((resolve) => child.on('exit', () => resolve())) };
    workers.add(worker);
    started.push(worker);
  }
  while ((await redis.smembers(registry)).filter((id) => !before.has(id)).length < count) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  redis.disconnect();
  return started;
}

async function stopWorkers(): Promise<void> {
  for (const worker of workers) worker.child.kill('SIGTERM');
  await Promise.all([...workers].map((w) => w.exited));
  workers.clear();
}

async function removeKeys(queue: string): Promise<void> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const q = new Queue(queue, { connection, prefix });
  await q.obliterate({ force: true });
  await q.close();
  let cursor = '0';
  do {
    const [next, keys] = await connection.scan(cursor, 'MATCH', `${prefix}:${queue}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await connection.del(...keys);
  } while (cursor !== '0');
  connection.disconnect();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

const lines: string[] = [];
function report(line: string): void {
  lines.push(line);
  process.stdout.write(`${line}\n`);
}

async function throughput(): Promise<void> {
  const queue = 'throughput';
  await startWorkers(queue, 2, 1);
  const backendOptions = { connection: REDIS_URL, prefix, queue, root };
  const parallel = new Parallel({ nJobs: 2, backend: 'redis', backendOptions });
  const n = Number(process.env.TASKS ?? 1_000_000);
  const tasks = () => Array.from({ length: n }, (_, i) => delayed(nothing)(i));
  await parallel.run(tasks().slice(0, 20_000)); // warm-up: workers' pools, JIT
  const rates: number[] = [];
  for (let r = 0; r < 3; r++) rates.push(n / (await time(() => parallel.run(tasks()))));
  report(
    `| trivial tasks, auto batching, 2 workers x 1 process | ${n} tasks | ${Math.round(median(rates))} tasks/s (median of 3: ${rates.map((x) => Math.round(x)).join(', ')}) |`,
  );
  const local = new Parallel({ nJobs: 2, backend: 'processes' });
  await local.run(tasks().slice(0, 20_000));
  const localRates: number[] = [];
  for (let r = 0; r < 3; r++) localRates.push(n / (await time(() => local.run(tasks()))));
  report(
    `| same on the processes backend (nJobs 2), for scale | ${n} tasks | ${Math.round(median(localRates))} tasks/s |`,
  );
  await local.close();
  const trips: number[] = [];
  for (let r = 0; r < 50; r++) trips.push(await time(() => parallel.run([delayed(nothing)(r)])));
  report(
    `| one empty task per run() (add to result, call setup and cleanup included) | 50 runs | median ${(median(trips) * 1000).toFixed(2)} ms |`,
  );
  await parallel.close();
  await stopWorkers();
  await removeKeys(queue);
}

async function convolutions(): Promise<void> {
  const queue = 'convolve';
  const sizes = Array.from({ length: 16 }, () => 20_000);
  const tasks = () => sizes.map((n) => delayed(convolveRandom)(n));
  const local = new Parallel({ nJobs: 2, backend: 'processes' });
  await local.run(tasks().slice(0, 2));
  const localTimes: number[] = [];
  for (let r = 0; r < 3; r++) localTimes.push(await time(() => local.run(tasks())));
  await local.close();
  const localMedian = median(localTimes);
  report(`| 16 x convolveRandom(20000), processes backend nJobs 2 | | ${localMedian.toFixed(2)} s |`);
  for (const [count, concurrency] of [
    [1, 2],
    [2, 1],
  ] as const) {
    await startWorkers(queue, count, concurrency);
    const parallel = new Parallel({
      nJobs: 2,
      backend: 'redis',
      backendOptions: { connection: REDIS_URL, prefix, queue, root },
    });
    await parallel.run(tasks().slice(0, 2));
    const times: number[] = [];
    for (let r = 0; r < 3; r++) times.push(await time(() => parallel.run(tasks())));
    const m = median(times);
    report(
      `| same through redis, ${count} worker(s) x ${concurrency} process(es) | | ${m.toFixed(2)} s = ${(m / localMedian).toFixed(2)}x processes |`,
    );
    await parallel.close();
    await stopWorkers();
  }
  await removeKeys(queue);
}

async function recovery(): Promise<void> {
  const queue = 'recovery';
  const dir = mkdtempSync(join(tmpdir(), 'jt-bench-'));
  const log = join(dir, 'starts.txt');
  writeFileSync(log, '');
  const [victim] = await startWorkers(queue, 2, 1); // default lock and stall settings
  const parallel = new Parallel({
    nJobs: 2,
    backend: 'redis',
    batchSize: 1,
    backendOptions: { connection: REDIS_URL, prefix, queue, root },
  });
  const run = parallel.run(Array.from({ length: 40 }, (_, i) => delayed(loggedSleep)(log, i, 500)));
  const victimPid = victim?.child.pid as number;
  while (!readFileSync(log, 'utf8').includes(` ${victimPid} `))
    await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 100));
  victim?.child.kill('SIGKILL');
  const killedAt = Date.now();
  const results = await run;
  const starts = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(' ').map(Number) as [number, number, number]);
  // Tasks the victim started without finishing were started again by the other worker.
  const rerun = new Map<number, number>();
  const byVictim = new Set(starts.filter(([, ppid]) => ppid === victimPid).map(([i]) => i));
  for (const [index, ppid, at] of starts)
    if (byVictim.has(index) && ppid !== victimPid && at > killedAt) rerun.set(index, at);
  const delays = [...rerun.values()].map((at) => (at - killedAt) / 1000);
  const ok = results.every((r, i) => r === i);
  report(
    `| SIGKILL a worker mid-task (default lock 4 s, stalled check 2 s) | ${rerun.size} task(s) re-run | resumed on the other worker after ${delays.map((d) => d.toFixed(1)).join(', ')} s; all ${results.length} results in order: ${ok} |`,
  );
  await parallel.close();
  await stopWorkers();
  const redis = new Redis(REDIS_URL);
  const registry = `${prefix}:${queue}:jt:workers`;
  for (const id of await redis.smembers(registry)) await redis.del(`${prefix}:${queue}:jt:w:${id}`);
  redis.disconnect();
  await removeKeys(queue);
  rmSync(dir, { recursive: true, force: true });
}

// The worker imports this file for its task functions: the benchmark runs only in the main program.
if (isMainProgram(import.meta)) {
  try {
    const which = process.argv.slice(2);
    report(`Node ${process.version}, redis at ${REDIS_URL.replace(/\/\/[^@]*@/, '//***@')}`);
    report('| what | size | result |');
    report('| --- | --- | --- |');
    if (which.length === 0 || which.includes('throughput')) await throughput();
    if (which.length === 0 || which.includes('convolve')) await convolutions();
    if (which.length === 0 || which.includes('recovery')) await recovery();
  } finally {
    await stopWorkers();
  }
  process.exit(0);
}
