/**
 * W4 of the dispatch benchmark, three ways, to show where its time goes (BENCHMARKS.md):
 * 8 tasks each reading one 256 MB Float64Array on 2 thread workers, with the array made
 * - plainly (`new Float64Array`): joblib-ts copies it once into shared memory for the run;
 * - with `createSharedArray`: it is already shared, nothing is copied;
 * and the copy alone (a fresh SharedArrayBuffer, then the same bytes again into the same pages).
 *
 *   node --expose-gc --import tsx bench/shared-array.ts
 *
 * With --expose-gc it collects before each timing: otherwise the 256 MB copies of earlier repetitions are
 * still alive, and allocating fresh shared memory next to them ran 1.5 to 7 times slower.
 */
import { cpus } from 'node:os';
import { createSharedArray, delayed, Parallel } from '../src/index.ts';
import { sumArray } from './tasks.ts';

const LENGTH = (256 * 1024 * 1024) / Float64Array.BYTES_PER_ELEMENT;
const TASKS = 8;
const REPS = 5;

function fill(values: Float64Array): Float64Array {
  for (let i = 0; i < values.length; i++) values[i] = (i % 1024) * 0.5;
  return values;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function time(fn: () => unknown): Promise<number> {
  (globalThis as { gc?: () => void }).gc?.();
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const plainArray = fill(new Float64Array(LENGTH));
const sharedArray = fill(createSharedArray(Float64Array, LENGTH));
const parallel = new Parallel({ nJobs: 2 });
await parallel.run(Array.from({ length: 4 }, () => delayed(sumArray)(new Float64Array(1024))));

const rows: [string, number[]][] = [
  ['plain loop, 8 reads on the main thread', []],
  ['threads, plain Float64Array (copied once per run)', []],
  ['threads, createSharedArray (no copy)', []],
  ['the copy alone: fresh SharedArrayBuffer', []],
  ['the copy alone: again into the same pages', []],
];
for (let rep = 0; rep < REPS; rep++) {
  rows[0]?.[1].push(await time(() => Array.from({ length: TASKS }, () => sumArray(plainArray))));
  // A new run each time: the shared copy is made once per run, so each of these pays for it.
  rows[1]?.[1].push(
    await time(() => parallel.run(Array.from({ length: TASKS }, () => delayed(sumArray)(plainArray)))),
  );
  rows[2]?.[1].push(
    await time(() => parallel.run(Array.from({ length: TASKS }, () => delayed(sumArray)(sharedArray)))),
  );
  const bytes = new Uint8Array(plainArray.buffer);
  let target: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  rows[3]?.[1].push(
    await time(() => {
      target = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
      target.set(bytes);
    }),
  );
  rows[4]?.[1].push(await time(() => target.set(bytes)));
}
await parallel.close();

const plain = median(rows[0]?.[1] ?? []);
console.log(
  `# W4 three ways: ${TASKS} tasks × 256 MB, 2 thread workers, median of ${REPS}, ${cpus().length} cores, Node ${process.version}`,
);
console.log('| what | ms, median (min–max) | vs plain loop | target 1.2 × plain / 2 |');
console.log('| --- | ---: | ---: | ---: |');
for (const [label, values] of rows) {
  const m = median(values);
  const range = `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`;
  const isRun = label.startsWith('threads');
  console.log(
    `| ${label} | ${m.toFixed(0)} (${range}) | ${isRun ? `${(plain / m).toFixed(2)}x` : ''} | ${isRun ? `${m <= (1.2 * plain) / 2 ? '✔' : '✘'} (${((1.2 * plain) / 2).toFixed(0)} ms)` : ''} |`,
  );
}
