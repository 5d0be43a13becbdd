/**
 * The seed notebook ("joblib's Parallel and delayed"), cell by cell, in TypeScript.
 * Run it with `npm run demo`.
 *
 * Like the notebook, this file defines the task function and runs the loop in one place. A worker
 * imports this file to reach `convolveRandom`, so the program itself runs under the main-program
 * guard (Python's `if __name__ == "__main__":`), and workers skip it.
 */
import { cpuCount, delayed, isMainProgram, Parallel } from 'joblib-ts';
import { convolve, randomSample } from '../src/workloads/convolve.ts';

/** Convolve two random arrays of length `size` (the notebook's `convolve_random`). */
export function convolveRandom(size: number): Float64Array {
  return convolve(randomSample(size), randomSample(size));
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Runs `fn` `repeats` times and returns the best wall time in seconds, as %timeit reports. */
async function timeit(label: string, fn: () => unknown, repeats = 1): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  console.log(`${label}: ${best.toFixed(2)} s${repeats > 1 ? ` (best of ${repeats})` : ''}`);
  return best;
}

function cell(title: string): void {
  console.log(`\n── ${title} ${'─'.repeat(Math.max(0, 70 - title.length))}`);
}

async function main(): Promise<void> {
  console.log(`joblib-ts seed tutorial on ${cpuCount()} CPUs, Node ${process.version}`);

  cell('In [2]: a list comprehension, and the same through Parallel');
  console.log(range(10).map((i) => i ** 2));
  console.log(await new Parallel().run(range(10).map((i) => delayed(Math.pow)(i, 2))));

  cell('In [3]: to parallelize, simply set nJobs');
  const squares = new Parallel({ nJobs: 8 });
  console.log(await squares.run(range(10).map((i) => delayed(Math.pow)(i, 2))));
  await squares.close();

  cell('In [5]: time to run once with length-40000 arrays');
  await timeit('convolveRandom(40000)', () => convolveRandom(40000), 3);

  cell('In [6]: 8 sizes 40000..47000, sequentially, then with 8 jobs');
  const sizes = range(8).map((i) => 40000 + i * 1000);
  const sequential = await timeit('sequential', () => sizes.map((n) => convolveRandom(n)));
  const parallel = new Parallel({ nJobs: 8 });
  // The first run starts the workers and each imports this file; %timeit also reuses joblib's warm pool.
  await parallel.run(range(8).map(() => delayed(convolveRandom)(10)));
  const inParallel = await timeit('Parallel(nJobs=8)', () =>
    parallel.run(sizes.map((n) => delayed(convolveRandom)(n))),
  );
  console.log(`speedup: ${(sequential / inParallel).toFixed(2)}x on ${cpuCount()} CPUs`);

  cell('In [7]: the verbose argument displays progress messages');
  const result = await new Parallel({ nJobs: 8, verbose: 50 }).run(
    range(16).map((i) => delayed(convolveRandom)(40000 + i * 1000)),
  );
  console.log(`${result.length} results; the first has ${result[0]?.length} values`);
  await parallel.close();

  cell('In [8]: where does parallelism pay? a small grid of sizes × nJobs');
  const gridSizes = [5000, 10000, 20000];
  const maxJobs = Math.min(4, Math.max(2, cpuCount()));
  const rows: string[][] = [['nJobs', ...gridSizes.map((s) => `size ${s}`)]];
  for (let nJobs = 1; nJobs <= maxJobs; nJobs++) {
    const row = [String(nJobs)];
    const p = new Parallel({ nJobs });
    await p.run(range(nJobs).map(() => delayed(convolveRandom)(10)));
    for (const size of gridSizes) {
      const start = performance.now();
      await p.run(range(maxJobs).map(() => delayed(convolveRandom)(size)));
      row.push(`${((performance.now() - start) / 1000).toFixed(3)} s`);
    }
    rows.push(row);
    await p.close();
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const row of rows) console.log(row.map((v, c) => v.padStart(widths[c]!)).join('  '));
  console.log(`(each cell: ${maxJobs} convolutions; seconds, lower is better)`);
}

if (isMainProgram(import.meta)) {
  await main();
}
