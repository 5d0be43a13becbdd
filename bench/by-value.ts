/**
 * What sending a function by value costs (issue 13): an inline arrow against the same code exported by a
 * module (sent by reference), on W1 (100,000 trivial tasks) and W3 (2,000 tasks of 1 ms of CPU), on the
 * threads and processes backends, 2 workers; W1 also with the arrow made once, outside the loop (by
 * value without a new function object per task). Run: `npx tsx bench/by-value.ts` (BENCH_REPS=N to change
 * the repetitions, 7 by default).
 *
 * Both variants run on the same warm pool, alternated repetition by repetition, so that load on the
 * machine falls on both alike; the medians are printed. Each timed `run()` includes everything a user's
 * run pays: for the arrow, taking its captures (a snapshot per run) and sending them to each worker.
 */
import { availableParallelism, cpus } from 'node:os';
import { delayed, Parallel } from '../src/index.ts';
import { SIZES, WORKERS } from './config.ts';
import { spin1ms, square } from './tasks.ts';

const REPS = Number(process.env.BENCH_REPS ?? 7);

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function calibrateSpin(): number {
  const trial = 200_000;
  for (let i = 0; i < 20; i++) spin1ms(trial);
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    spin1ms(trial);
    times.push(performance.now() - t0);
  }
  return Math.round(trial / median(times));
}

const iterations = calibrateSpin();

/** W3's work written inline: the same loop as `spin1ms`, its iteration count captured, not passed. */
const spinInline = () => {
  let x = 0x9e3779b9 | 0;
  let acc = 0;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    acc = (acc + (x & 0xffff)) | 0;
  }
  return acc;
};

/** The same arrow made once, outside the loop: by value, one definition for every task. */
const squareArrow = (x: number) => x * x;

interface Variant {
  readonly label: string;
  readonly tasks: () => ReturnType<ReturnType<typeof delayed>>[];
}

const workloads: { id: string; title: string; variants: Variant[] }[] = [
  {
    id: 'W1',
    title: `${SIZES.w1Tasks.toLocaleString('en-US')} trivial tasks`,
    variants: [
      {
        label: 'exported square',
        tasks: () => Array.from({ length: SIZES.w1Tasks }, (_, i) => delayed(square)(i)),
      },
      {
        label: 'inline (x) => x * x',
        tasks: () => Array.from({ length: SIZES.w1Tasks }, (_, i) => delayed((x: number) => x * x)(i)),
      },
      {
        label: 'arrow made once',
        tasks: () => Array.from({ length: SIZES.w1Tasks }, (_, i) => delayed(squareArrow)(i)),
      },
    ],
  },
  {
    id: 'W3',
    title: `${SIZES.w3Tasks.toLocaleString('en-US')} tasks of 1 ms`,
    variants: [
      {
        label: 'exported spin1ms',
        tasks: () => Array.from({ length: SIZES.w3Tasks }, () => delayed(spin1ms)(iterations)),
      },
      {
        label: 'inline closure',
        tasks: () => Array.from({ length: SIZES.w3Tasks }, () => delayed(spinInline)()),
      },
    ],
  },
];

const rows: string[] = [];
for (const backend of ['threads', 'processes'] as const) {
  const parallel = new Parallel({ nJobs: WORKERS, backend });
  for (const { id, title, variants } of workloads) {
    // Warm: workers started, modules imported, code compiled, both variants once.
    for (const variant of variants) await parallel.run(variant.tasks());
    const times: number[][] = variants.map(() => []);
    for (let rep = 0; rep < REPS; rep++) {
      for (const [v, variant] of variants.entries()) {
        const tasks = variant.tasks();
        const t0 = performance.now();
        await parallel.run(tasks);
        times[v]?.push(performance.now() - t0);
      }
    }
    const [byReference, byValue, once] = times.map(median) as [number, number, number | undefined];
    const cell = (ms: number | undefined) =>
      ms === undefined ? '—' : `${ms.toFixed(1)} ms (${(ms / byReference).toFixed(2)}×)`;
    rows.push(
      `| ${id}: ${title} | ${backend} | ${byReference.toFixed(1)} ms | ${cell(byValue)} | ${cell(once)} |`,
    );
    console.error(rows[rows.length - 1]);
  }
  await parallel.close();
}

console.log(
  `By value vs by reference, ${WORKERS} workers, median of ${REPS} runs; ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} CPUs (${cpus()[0]?.model.trim()}), Node ${process.version}; W3's 1 ms = ${iterations.toLocaleString('en-US')} iterations\n`,
);
console.log(
  '| workload | backend | exported function (by reference) | inline arrow, a new one per task (by value) | arrow made once (by value) |',
);
console.log('| --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
