/**
 * Memory stores compared (the cost of deep code keys is measured by `bench/deep-key.ts`, in fresh
 * processes).
 *
 * - Hits on the disk store (a temp folder) and the Redis store (REDIS_URL, its own key prefix, removed
 *   after): latency of one small hit, throughput of small hits 32 at a time, and a hit whose result is a
 *   256 MB Float64Array (BENCH_MB to change), end to end through `Memory`.
 *
 * Run: `npx tsx bench/memory-store.ts` (BENCH_REPS repetitions, medians).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisStore } from '../src/backends/redis/index.ts';
import { type CacheStore, Memory } from '../src/memory/index.ts';

const MB = Number(process.env.BENCH_MB ?? 256);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

export function smallResult(id: number): { id: number; tags: string[]; score: number } {
  return { id, tags: ['a', 'b'], score: id * 0.5 };
}

export function bigResult(n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = i * 0.25;
  return out;
}

interface Row {
  store: string;
  smallHitMs: number;
  hitsPerSecond: number;
  bigHitMs: number;
  bigGBps: number;
}

async function measure(name: string, memory: Memory): Promise<Row> {
  const small = memory.cache(smallResult);
  await small(1);
  const N = 500;
  const lat: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t = performance.now();
    for (let i = 0; i < N; i++) await small(1);
    lat.push((performance.now() - t) / N);
  }
  for (let i = 0; i < 32; i++) await small(i);
  const thr: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t = performance.now();
    for (let round = 0; round < 20; round++)
      await Promise.all(Array.from({ length: 32 }, (_, i) => small(i)));
    thr.push((20 * 32) / ((performance.now() - t) / 1000));
  }
  const big = memory.cache(bigResult);
  const n = (MB * 1024 * 1024) / 8;
  await big(n);
  const bigRuns: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t = performance.now();
    const out = await big(n);
    bigRuns.push(performance.now() - t);
    if (out.length !== n || out[n - 1] !== (n - 1) * 0.25) throw new Error(`${name}: wrong cached value`);
  }
  const bigHitMs = median(bigRuns);
  return {
    store: name,
    smallHitMs: median(lat),
    hitsPerSecond: median(thr),
    bigHitMs,
    bigGBps: (n * 8) / 1e9 / (bigHitMs / 1000),
  };
}

const dir = await mkdtemp(join(tmpdir(), 'joblib-ts-bench-stores-'));
const prefix = `joblib-ts-bench-${process.pid}:`;
const stores: CacheStore[] = [];
try {
  const load = loadavg()[0]?.toFixed(1);
  const rows: Row[] = [await measure('disk', new Memory(join(dir, 'cache')))];
  let redisNote = '';
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    const store = redisStore(REDIS_URL, { prefix });
    stores.push(store);
    rows.push(await measure('redis', new Memory({ store })));
  } catch (error) {
    redisNote = `redis skipped: ${(error as Error).message}`;
  } finally {
    probe.disconnect();
  }
  console.log(
    `Node ${process.version}, load average ${load} at start, ${MB} MB big values, medians of ${REPS}`,
  );
  console.log(
    '| store | small hit (ms) | small hits/s (32 at a time) | 256 MB hit (ms) | 256 MB hit (GB/s) |',
  );
  console.log(
    '| ----- | -------------: | --------------------------: | --------------: | ----------------: |',
  );
  for (const r of rows)
    console.log(
      `| ${r.store} | ${r.smallHitMs.toFixed(3)} | ${r.hitsPerSecond.toFixed(0)} | ${r.bigHitMs.toFixed(1)} | ${r.bigGBps.toFixed(2)} |`,
    );
  if (redisNote) console.log(redisNote);
} finally {
  for (const s of stores) {
    await s.removeAll('');
    await s.close?.();
  }
  await rm(dir, { recursive: true, force: true });
}
