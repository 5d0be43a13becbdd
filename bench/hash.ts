/**
 * Hash throughput on a 256 MB Float64Array: joblib-ts `hash()` against the candidates it was chosen from
 * and Node's own crypto hashes. Run: `npx tsx bench/hash.ts` (set BENCH_MB to change the size).
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { xxh3, xxh64 } from '@node-rs/xxhash';
import { createXXHash128 } from 'hash-wasm';
import { hash } from '../src/hash.ts';

const MB = Number(process.env.BENCH_MB ?? 256);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const JOBLIB_GBPS = 0.65; // Python joblib.hash of a 256 MB float64 array, measured on this machine

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function timeIt(fn: () => unknown | Promise<unknown>, reps = REPS): Promise<number> {
  await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

const arr = new Float64Array((MB * 1024 * 1024) / 8);
for (let i = 0; i < arr.length; i++) arr[i] = Math.sin(i);
const bytes = new Uint8Array(arr.buffer);
const gb = arr.byteLength / 1e9;
const wasm = await createXXHash128();

const rows: [string, number][] = [];
const add = async (name: string, fn: () => unknown) => rows.push([name, await timeIt(fn)]);
await add("hash(x) default 'xxh64x2' (128-bit)", () => hash(arr));
await add("hash(x, { algorithm: 'xxh3-128' })", () => hash(arr, { algorithm: 'xxh3-128' }));
await add("hash(x, { algorithm: 'sha1' })", () => hash(arr, { algorithm: 'sha1' }));
await add('raw @node-rs/xxhash xxh64 (64-bit, one pass)', () => xxh64(bytes));
await add('raw @node-rs/xxhash xxh3.xxh128', () => xxh3.xxh128(bytes));
await add('raw hash-wasm xxhash128', () => {
  wasm.init();
  wasm.update(bytes);
  return wasm.digest();
});
const cryptoRows: [string, number][] = [];
for (const alg of ['md5', 'sha1', 'sha256', 'blake2b512']) {
  const t = await timeIt(() => createHash(alg).update(bytes).digest());
  rows.push([`node crypto ${alg}`, t]);
  cryptoRows.push([alg, t]);
}
const fastestCrypto = Math.min(...cryptoRows.map(([, t]) => t));

const small = { id: 42, name: 'sample', tags: ['a', 'b'], weights: new Float64Array(16) };
const N = 20_000;
const t0 = performance.now();
for (let i = 0; i < N; i++) hash(small);
const smallUs = ((performance.now() - t0) / N) * 1000;

console.log(
  `# hash bench: ${MB} MB Float64Array, median of ${REPS}, ${availableParallelism()} cores, Node ${process.version}`,
);
console.log('| what | ms | GB/s | vs joblib (0.65 GB/s) | vs fastest node crypto |');
console.log('|---|---:|---:|---:|---:|');
for (const [name, ms] of rows) {
  const gbps = gb / (ms / 1000);
  console.log(
    `| ${name} | ${ms.toFixed(1)} | ${gbps.toFixed(2)} | ${(gbps / JOBLIB_GBPS).toFixed(2)}x | ${(fastestCrypto / ms).toFixed(2)}x |`,
  );
}
console.log(
  `| hash() of a small object (${Object.keys(small).length} keys) | ${(smallUs / 1000).toFixed(4)} (${smallUs.toFixed(1)} µs) | | | |`,
);
