/**
 * One cell of the parallel-dispatch benchmark: one workload on one contender, once, in this (fresh)
 * process. Started by `bench/run.ts` as
 *   node --import tsx --expose-gc bench/cell.ts --workload W1 --contender threads --spin-iterations N
 * and prints one line `BENCH-RESULT {json}` (see `CellResult`). Everything outside the timed part (input
 * arrays, pool warm-up, closing the pool) is left out of `ms`.
 */
import { randomSample } from '../src/workloads/convolve.ts';
import {
  type CellResult,
  type ContenderId,
  isPeer,
  type PeerId,
  RESULT_PREFIX,
  SIZES,
  WORKERS,
  type WorkloadId,
} from './config.ts';
import { treePssKb } from './memory-usage.ts';
import { convolve, spin1ms, square, sumArray } from './tasks.ts';

interface CellOptions {
  workload: WorkloadId;
  contender: ContenderId;
  spinIterations: number;
  /** W5 for the peers: they have no lazy input and run at ~17,000 tasks/s, so the run may use fewer tasks. */
  w5PeerTasks: number;
}

function parseOptions(argv: string[]): CellOptions {
  const get = (name: string): string | undefined => {
    const at = argv.indexOf(`--${name}`);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  return {
    workload: (get('workload') ?? 'W1') as WorkloadId,
    contender: (get('contender') ?? 'plain') as ContenderId,
    spinIterations: Number(get('spin-iterations') ?? 100_000),
    w5PeerTasks: Number(get('w5-peer-tasks') ?? SIZES.w5Tasks),
  };
}

type TaskName = 'square' | 'convolve' | 'spin1ms' | 'sumArray';

/** What each contender must do: call a task function by name with arguments, in a pool of `WORKERS`. */
interface PeerPool {
  call(name: TaskName, args: unknown[]): Promise<unknown>;
  close(): Promise<void>;
}

const peerWorker = new URL('./peers/worker.mjs', import.meta.url);
const workerpoolWorker = new URL('./peers/workerpool-worker.mjs', import.meta.url);

/** piscina and tinypool take one value per task: convolve's two arrays travel as `{ a, b }`. */
function singleValue(name: TaskName, args: unknown[]): unknown {
  return name === 'convolve' ? { a: args[0], b: args[1] } : args[0];
}

/**
 * Imports the peer's package, then returns a function that starts its pool of `WORKERS` workers: W6
 * times only the second step (joblib-ts is imported before its clock starts too).
 */
async function loadPeer(peer: PeerId): Promise<() => PeerPool> {
  if (peer === 'piscina') {
    const { Piscina } = await import('piscina');
    return () => {
      const pool = new Piscina({ filename: peerWorker.href, minThreads: WORKERS, maxThreads: WORKERS });
      return {
        call: (name, args) => pool.run(singleValue(name, args), { name }),
        close: () => pool.destroy(),
      };
    };
  }
  if (peer === 'tinypool') {
    const { Tinypool } = await import('tinypool');
    return () => {
      const pool = new Tinypool({ filename: peerWorker.href, minThreads: WORKERS, maxThreads: WORKERS });
      return {
        call: (name, args) => pool.run(singleValue(name, args), { name }),
        close: () => pool.destroy(),
      };
    };
  }
  const { default: workerpool } = await import('workerpool');
  return () => {
    const pool = workerpool.pool(workerpoolWorker.pathname, {
      minWorkers: WORKERS,
      maxWorkers: WORKERS,
      workerType: 'thread',
    });
    return {
      call: (name, args) => pool.exec(name, args) as Promise<unknown>,
      close: async () => {
        await pool.terminate();
      },
    };
  };
}

async function openPeer(peer: PeerId): Promise<PeerPool> {
  return (await loadPeer(peer))();
}

const TASK_FUNCTIONS = { square, convolve, spin1ms, sumArray } as const;

async function openJoblib(backend: 'threads' | 'processes') {
  const { Parallel } = await import('../src/index.ts');
  return new Parallel({ nJobs: WORKERS, backend });
}

/** The timed window, in microseconds of the monotonic clock that V8's CPU profiles use too. */
let timedWindowUs: [number, number] | undefined;

/** Starts the clock of the timed part; the function it returns stops it and gives the milliseconds. */
function startClock(): () => number {
  const h0 = process.hrtime.bigint();
  const t0 = performance.now();
  return () => {
    const ms = performance.now() - t0;
    timedWindowUs = [Number(h0 / 1000n), Number(process.hrtime.bigint() / 1000n)];
    return ms;
  };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function maxRssKb(): number {
  return process.resourceUsage().maxRSS;
}

function sumOf(values: readonly unknown[]): number {
  let s = 0;
  for (const v of values) s += Number(v);
  return s;
}

/** Warm-up inputs: tiny versions of each workload's task, run on every worker before the timing. */
function warmArgs(name: TaskName): unknown[] {
  if (name === 'convolve') return [randomSample(64), randomSample(64)];
  if (name === 'spin1ms') return [100];
  if (name === 'sumArray') return [new Float64Array(1024)];
  return [3];
}

/** Runs `count` tasks of `name(args(i))` on `contender`, after a warm-up; returns the results and ms. */
async function runBatch(
  contender: ContenderId,
  name: TaskName,
  count: number,
  args: (i: number) => unknown[],
  options: { warmTasks?: number; beforeTiming?: () => void } = {},
): Promise<{ ms: number; results: unknown[] }> {
  const fn = TASK_FUNCTIONS[name] as (...a: unknown[]) => unknown;
  const warm = options.warmTasks ?? 2 * WORKERS;
  if (contender === 'plain') {
    for (let i = 0; i < warm; i++) fn(...warmArgs(name));
    options.beforeTiming?.();
    const stop = startClock();
    const results = new Array<unknown>(count);
    for (let i = 0; i < count; i++) results[i] = fn(...args(i));
    return { ms: stop(), results };
  }
  if (isPeer(contender)) {
    const pool = await openPeer(contender);
    try {
      await Promise.all(Array.from({ length: warm }, () => pool.call(name, warmArgs(name))));
      options.beforeTiming?.();
      const stop = startClock();
      const pending = new Array<Promise<unknown>>(count);
      for (let i = 0; i < count; i++) pending[i] = pool.call(name, args(i));
      const results = await Promise.all(pending);
      return { ms: stop(), results };
    } finally {
      await pool.close();
    }
  }
  const { delayed } = await import('../src/index.ts');
  const parallel = await openJoblib(contender);
  try {
    const task = delayed(fn);
    // Twice: the first run starts the workers and imports the task module in each.
    for (let r = 0; r < 2; r++)
      await parallel.run(Array.from({ length: warm }, () => task(...warmArgs(name))));
    options.beforeTiming?.();
    const stop = startClock();
    const tasks = new Array(count);
    for (let i = 0; i < count; i++) tasks[i] = task(...args(i));
    const results = await parallel.run(tasks);
    return { ms: stop(), results };
  } finally {
    await parallel.close();
  }
}

async function w1(o: CellOptions): Promise<CellResult> {
  // Pool warm: besides the start-up tasks, a run of 2,000 tasks so that the dispatch code is compiled.
  const { ms, results } = await runBatch(o.contender, 'square', SIZES.w1Tasks, (i) => [i], {
    warmTasks: 2000,
  });
  return { status: 'ok', ms, tasks: results.length, maxRssKb: maxRssKb(), check: sumOf(results) };
}

async function w2(o: CellOptions): Promise<CellResult> {
  const inputs = Array.from({ length: SIZES.w2Tasks }, () => [
    randomSample(SIZES.w2Length),
    randomSample(SIZES.w2Length),
  ]);
  const { ms, results } = await runBatch(
    o.contender,
    'convolve',
    SIZES.w2Tasks,
    (i) => inputs[i] as unknown[],
  );
  const check = sumOf(results.map((r) => (r as Float64Array).length));
  return { status: 'ok', ms, tasks: results.length, maxRssKb: maxRssKb(), check };
}

async function w3(o: CellOptions): Promise<CellResult> {
  const { ms, results } = await runBatch(o.contender, 'spin1ms', SIZES.w3Tasks, () => [o.spinIterations]);
  return { status: 'ok', ms, tasks: results.length, maxRssKb: maxRssKb(), check: sumOf(results) };
}

async function w4(o: CellOptions): Promise<CellResult> {
  const values = new Float64Array((SIZES.w4Megabytes * 1024 * 1024) / Float64Array.BYTES_PER_ELEMENT);
  for (let i = 0; i < values.length; i++) values[i] = (i % 1024) * 0.5;
  let baselineKb = 0;
  const { ms, results } = await runBatch(o.contender, 'sumArray', SIZES.w4Tasks, () => [values], {
    beforeTiming: () => {
      gc();
      baselineKb = treePssKb(process.pid);
    },
  });
  return { status: 'ok', ms, tasks: results.length, maxRssKb: maxRssKb(), baselineKb, check: sumOf(results) };
}

/**
 * W5's check sum, modulo 2^32: exact whatever the order (the results of 'unordered' arrive in any order,
 * and a plain floating-point sum of 2,000,000 squares past 2^53 would depend on it).
 */
function addExact(sum: number, value: number): number {
  return (sum + value) % 2 ** 32;
}

function* squares(count: number): Generator<number> {
  for (let i = 0; i < count; i++) yield i;
}

async function w5(o: CellOptions): Promise<CellResult> {
  const { contender } = o;
  if (contender === 'plain') {
    gc();
    const baselineKb = treePssKb(process.pid);
    const stop = startClock();
    let sum = 0;
    let count = 0;
    for (const i of squares(SIZES.w5Tasks)) {
      sum = addExact(sum, square(i));
      count++;
    }
    const ms = stop();
    return { status: 'ok', ms, tasks: count, maxRssKb: maxRssKb(), baselineKb, check: sum };
  }
  if (isPeer(contender)) {
    // No lazy input in any of the peers: the documented pattern is a bounded queue fed by the caller
    // (piscina/tinypool `maxQueue` + 'drain'); here, at most 64 tasks in flight, consumed as they end.
    const total = o.w5PeerTasks;
    const pool = await openPeer(contender);
    try {
      await Promise.all(Array.from({ length: 2000 }, (_, i) => pool.call('square', [i])));
      gc();
      const baselineKb = treePssKb(process.pid);
      const stop = startClock();
      let sum = 0;
      let count = 0;
      let inFlight = 0;
      let wake: (() => void) | undefined;
      const limit = 64;
      for (const i of squares(total)) {
        if (inFlight >= limit) await new Promise<void>((resolve) => (wake = resolve));
        inFlight++;
        void pool.call('square', [i]).then((value) => {
          sum = addExact(sum, Number(value));
          count++;
          inFlight--;
          const w = wake;
          wake = undefined;
          w?.();
        });
      }
      while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve));
      const ms = stop();
      const note = total === SIZES.w5Tasks ? undefined : `${total.toLocaleString('en-US')} tasks`;
      return { status: 'ok', ms, tasks: count, maxRssKb: maxRssKb(), baselineKb, check: sum, note };
    } finally {
      await pool.close();
    }
  }
  const { delayed } = await import('../src/index.ts');
  const { Parallel } = await import('../src/index.ts');
  const task = delayed(square);
  const warm = new Parallel({ nJobs: WORKERS, backend: contender });
  for (let r = 0; r < 2; r++) await warm.run(Array.from({ length: 2000 }, (_, i) => task(i)));
  // `returnAs` is the option of issue 3; built through a cast so that this file compiles before it exists.
  const options = { nJobs: WORKERS, backend: contender, returnAs: 'unordered' } as ConstructorParameters<
    typeof Parallel
  >[0];
  const parallel = new Parallel(options);
  function* tasks(count: number) {
    for (let i = 0; i < count; i++) yield task(i);
  }
  try {
    gc();
    const baselineKb = treePssKb(process.pid);
    const stop = startClock();
    const out: unknown = (parallel.run as (t: unknown) => unknown)(tasks(SIZES.w5Tasks));
    let sum = 0;
    let count = 0;
    let note: string | undefined;
    let status: CellResult['status'] = 'ok';
    if (out !== null && typeof out === 'object' && Symbol.asyncIterator in out) {
      for await (const item of out as AsyncIterable<unknown>) {
        sum = addExact(
          sum,
          Number(item !== null && typeof item === 'object' && 'value' in item ? item.value : item),
        );
        count++;
      }
    } else {
      // No `returnAs: 'unordered'` yet: run() resolves to the array of all the results.
      const results = (await out) as unknown[];
      sum = sumOf(results);
      count = results.length;
      status = 'na';
      note = "returnAs: 'unordered' not implemented: run() returned a Promise of all results";
    }
    const ms = stop();
    return { status, ms, tasks: count, maxRssKb: maxRssKb(), baselineKb, check: sum, note };
  } finally {
    await parallel.close();
    await warm.close();
  }
}

async function w6(o: CellOptions): Promise<CellResult> {
  const { contender } = o;
  if (contender === 'plain') {
    const stop = startClock();
    const value = square(3);
    return { status: 'ok', ms: stop(), tasks: 1, maxRssKb: maxRssKb(), check: value };
  }
  if (isPeer(contender)) {
    const start = await loadPeer(contender);
    const stop = startClock();
    const pool = start();
    const value = Number(await pool.call('square', [3]));
    const ms = stop();
    await pool.close();
    return { status: 'ok', ms, tasks: 1, maxRssKb: maxRssKb(), check: value };
  }
  // The library itself is imported before the clock starts (an `import` at the top of a program).
  const { Parallel, delayed } = await import('../src/index.ts');
  const stop = startClock();
  const parallel = new Parallel({ nJobs: WORKERS, backend: contender });
  const [value] = await parallel.run([delayed(square)(3)]);
  const ms = stop();
  await parallel.close();
  return { status: 'ok', ms, tasks: 1, maxRssKb: maxRssKb(), check: value };
}

const WORKLOAD_RUNNERS: Record<WorkloadId, (o: CellOptions) => Promise<CellResult>> = {
  W1: w1,
  W2: w2,
  W3: w3,
  W4: w4,
  W5: w5,
  W6: w6,
};

const options = parseOptions(process.argv.slice(2));
let result: CellResult;
try {
  result = await WORKLOAD_RUNNERS[options.workload](options);
} catch (error) {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  console.error(error);
  result = { status: 'error', ms: Number.NaN, tasks: 0, maxRssKb: maxRssKb(), note: message.split('\n')[0] };
}
if (timedWindowUs) result.windowUs = timedWindowUs;
process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`, () => process.exit(0));
