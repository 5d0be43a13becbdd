/**
 * `npx tsx bench/mixed-sizes.ts [threads|processes]`: issue 18's mixed-size case. `Promise.all` over
 * 200 runs with `nJobs: 2 + r % 8` (20 small tasks each) on one backend, from one program. Prints the
 * wall time, the peak number of live workers (threads: the backend's own count of live worker threads;
 * processes: this program's child processes, from /proc) and the peak memory (PSS of this program and
 * its children, /proc), sampled every 20 ms.
 *
 * Gives up after BENCH_TIMEOUT_S seconds (default 120) and says so: before the shared worker budget,
 * the processes case gave no result in 300 s. BENCH_RUNS and BENCH_TASKS change the sizes.
 */
import { liveWorkerThreadCount } from '../src/backends/threads.ts';
import { delayed, Parallel } from '../src/index.ts';
import { childProcesses } from '../test/fixtures/census.ts';
import { square } from '../test/fixtures/tasks.ts';
import { treePssKb } from './memory-usage.ts';

const backend = (process.argv[2] ?? 'threads') as 'threads' | 'processes';
if (backend !== 'threads' && backend !== 'processes') {
  throw new Error(`bench/mixed-sizes.ts: the backend must be threads or processes; got ${backend}`);
}
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const TASKS = Number(process.env.BENCH_TASKS ?? 20);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 120);

const liveWorkers = backend === 'threads' ? liveWorkerThreadCount : () => childProcesses(true);
let peakWorkers = 0;
let peakKb = 0;
const sample = () => {
  peakWorkers = Math.max(peakWorkers, liveWorkers());
  peakKb = Math.max(peakKb, treePssKb(process.pid));
};
const sampler = setInterval(sample, 20);

const report = (outcome: string, ms: number) =>
  console.log(
    `${backend}: ${RUNS} concurrent runs, nJobs 2 + r % 8, ${TASKS} tasks each: ${outcome} in ${(ms / 1000).toFixed(2)} s; ` +
      `peak live workers ${peakWorkers}; peak PSS ${(peakKb / 1024).toFixed(0)} MB ` +
      `(node ${process.version}, ${new Date().toISOString()})`,
  );

const startedAt = performance.now();
const giveUp = setTimeout(() => {
  sample();
  report('NO RESULT (gave up)', performance.now() - startedAt);
  process.exit(2);
}, TIMEOUT_S * 1000);

const parallels = Array.from({ length: RUNS }, (_, r) => new Parallel({ nJobs: 2 + (r % 8), backend }));
let finished = 0;
const progress = setInterval(
  () =>
    console.error(
      `  ${((performance.now() - startedAt) / 1000).toFixed(0)} s: ${finished} runs done, ${liveWorkers()} live workers (peak ${peakWorkers}), peak PSS ${(peakKb / 1024).toFixed(0)} MB`,
    ),
  10_000,
);
const results = await Promise.all(
  parallels.map(async (p, r) => {
    const result = await p.run(Array.from({ length: TASKS }, (_, i) => delayed(square)(i + r)));
    finished++;
    return result;
  }),
);
clearInterval(progress);
const elapsed = performance.now() - startedAt;
sample();
clearTimeout(giveUp);
clearInterval(sampler);
results.forEach((result, r) => {
  const expected = Array.from({ length: TASKS }, (_, i) => (i + r) * (i + r));
  if (JSON.stringify(result) !== JSON.stringify(expected)) throw new Error(`run ${r}: wrong results`);
});
/** Workers the shared pool has started in all (the backend is private: read through a cast). */
const started = (parallels[0] as unknown as { backend: { workersStarted: number } }).backend.workersStarted;
report(`all results correct (${started} workers started)`, elapsed);
await Promise.all(parallels.map((p) => p.close()));
