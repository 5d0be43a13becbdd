/**
 * Cache-hit cost: a call whose argument and result are both 256 MB Float64Arrays (end to end: hashing the
 * argument, reading and checking the entry, decoding the result), and a hit on small values.
 * Run: `npx tsx bench/memory.ts` (BENCH_MB, BENCH_REPS to change size and repetitions).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Memory } from '../src/memory/index.ts';

const MB = Number(process.env.BENCH_MB ?? 256);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const JOBLIB_HIT_GBPS = 0.34; // Python joblib, same call, this machine

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

export function scale(a: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! * 2;
  return out;
}

export function small(id: number, opts: { name: string; k: number[] }): { id: number; total: number } {
  return { id, total: opts.k.reduce((s, v) => s + v, id) };
}

const dir = await mkdtemp(join(tmpdir(), 'joblib-ts-bench-memory-'));
try {
  const memory = new Memory(dir);
  const cachedScale = memory.cache(scale);
  const arg = new Float64Array((MB * 1024 * 1024) / 8);
  for (let i = 0; i < arg.length; i++) arg[i] = Math.sin(i);
  const t0 = performance.now();
  await cachedScale(arg); // miss: compute and store
  const missMs = performance.now() - t0;
  const hits: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t = performance.now();
    const out = await cachedScale(arg);
    hits.push(performance.now() - t);
    if (out.length !== arg.length || out[7] !== arg[7]! * 2) throw new Error('wrong cached value');
  }
  const hitMs = median(hits);
  const gb = (2 * arg.byteLength) / 1e9;
  const gbps = gb / (hitMs / 1000);

  const cachedSmall = memory.cache(small);
  const opts = { name: 'sample', k: [1, 2, 3] };
  await cachedSmall(1, opts);
  const N = 2000;
  const smallRuns: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t = performance.now();
    for (let i = 0; i < N; i++) await cachedSmall(1, opts);
    smallRuns.push((performance.now() - t) / N);
  }
  const smallMs = median(smallRuns);

  console.log(`# Memory bench: median of ${REPS}, ${availableParallelism()} cores, Node ${process.version}`);
  console.log('| what | ms | throughput | target | vs joblib |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(`| miss (compute + store), ${MB} MB in, ${MB} MB out | ${missMs.toFixed(1)} | | | |`);
  console.log(
    `| hit, ${MB} MB argument + ${MB} MB result | ${hitMs.toFixed(1)} | ${gbps.toFixed(2)} GB/s | >= 1 GB/s | ${(gbps / JOBLIB_HIT_GBPS).toFixed(2)}x (joblib ${JOBLIB_HIT_GBPS} GB/s) |`,
  );
  console.log(`| hit, small argument and result | ${smallMs.toFixed(3)} | | < 1 ms | |`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
