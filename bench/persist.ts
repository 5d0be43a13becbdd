/**
 * dump/load throughput on a 256 MB Float64Array against the baseline they must stay close to:
 * `v8.serialize` + one `fs.writeFile`, and one `fs.readFile` + `v8.deserialize`.
 * Run: `npx tsx bench/persist.ts` (BENCH_MB, BENCH_REPS to change size and repetitions).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { type Compress, dump, load } from '../src/persist.ts';

const MB = Number(process.env.BENCH_MB ?? 256);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const JOBLIB = { dump: 2.2, load: 0.66 }; // GB/s, Python joblib on this machine

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

const dir = await mkdtemp(join(tmpdir(), 'joblib-ts-bench-persist-'));
try {
  const arr = new Float64Array((MB * 1024 * 1024) / 8);
  for (let i = 0; i < arr.length; i++) arr[i] = Math.sin(i);
  const gb = arr.byteLength / 1e9;
  const base = join(dir, 'base.bin');
  const ours = join(dir, 'ours.jlts');

  // Interleave baseline and ours so that machine noise hits both alike.
  const baseWrite = await timeIt(() => writeFile(base, serialize(arr)));
  const dumpT = await timeIt(() => dump(arr, ours));
  const baseRead = await timeIt(async () => deserialize(await readFile(base)));
  const loadT = await timeIt(() => load(ours));
  const back = await load<Float64Array>(ours);
  if (back.length !== arr.length || back[12345] !== arr[12345]) throw new Error('round trip failed');

  console.log(
    `# dump/load bench: ${MB} MB Float64Array, median of ${REPS}, ${availableParallelism()} cores, Node ${process.version}`,
  );
  console.log('| what | ms | GB/s | ours / baseline time (target <= 1.3) | vs joblib |');
  console.log('|---|---:|---:|---:|---:|');
  const row = (name: string, ms: number, ratio: string, joblib?: number) =>
    console.log(
      `| ${name} | ${ms.toFixed(1)} | ${(gb / (ms / 1000)).toFixed(2)} | ${ratio} | ${joblib ? `${(gb / (ms / 1000) / joblib).toFixed(2)}x (joblib ${joblib} GB/s)` : ''} |`,
    );
  row('baseline v8.serialize + fs.writeFile', baseWrite, '');
  row('dump(x, path)', dumpT, `${(dumpT / baseWrite).toFixed(2)}`, JOBLIB.dump);
  row('baseline fs.readFile + v8.deserialize', baseRead, '');
  row('load(path)', loadT, `${(loadT / baseRead).toFixed(2)}`, JOBLIB.load);

  // Compression on a compressible 32 MB array (smooth values), for the record.
  const c = new Float64Array((32 * 1024 * 1024) / 8).map((_, i) => Math.round(i / 1000));
  const cgb = c.byteLength / 1e9;
  const methods: [string, Compress][] = [
    ['gzip 3 (compress: true)', true],
    ['deflate 3', 'deflate'],
    ['brotli 4', 'brotli'],
  ];
  console.log('');
  console.log('| compression (32 MB compressible array) | dump GB/s | load GB/s | size ratio |');
  console.log('|---|---:|---:|---:|');
  for (const [name, compress] of methods) {
    const p = join(dir, 'c.jlts');
    let bytes = 0;
    const d = await timeIt(async () => {
      bytes = (await dump(c, p, { compress })).bytes;
    });
    const l = await timeIt(() => load(p));
    console.log(
      `| ${name} | ${(cgb / (d / 1000)).toFixed(2)} | ${(cgb / (l / 1000)).toFixed(2)} | ${(bytes / c.byteLength).toFixed(3)} |`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
