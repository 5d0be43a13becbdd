/**
 * The seed's grid: for every nJobs in 1..maxJobs and every size, time `tasksPerCell` convolutions of
 * that size run by `Parallel` with nJobs workers. The timer is injected (the real one is in
 * `measure.ts`), and so is the cache, so that the grid's logic can be tested without timing anything.
 */
import type { ProgressReporter } from '../../progress/bar.ts';
import type { BackendName, Cell, GridParams } from './types.ts';

/** Times single runs of one cell's tasks. */
export interface Timer {
  /** Wall-clock seconds of one run of `tasks` convolutions of `size` on `nJobs` workers. */
  time(size: number, nJobs: number, tasks: number, backend: BackendName): Promise<number>;
  /** Frees whatever the timer still holds (worker pools). */
  close(): Promise<void>;
}

export interface CellTiming {
  /** Median of `runs`. */
  seconds: number;
  runs: number[];
}

/** What the cache stores: one cell's timings, a pure function of its arguments on a given machine. */
export type MeasureCell = (
  size: number,
  nJobs: number,
  tasks: number,
  backend: BackendName,
  repeats: number,
) => Promise<CellTiming>;

/** A store of cell timings; `wrap` returns a function that reads a stored result or computes and stores it. */
export interface CellCache {
  /** Where the timings live, for messages. */
  readonly location: string;
  wrap(measureCell: MeasureCell): MeasureCell;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface RunGridOptions {
  timer: Timer;
  /** Omitted: every cell is measured and nothing is stored. */
  cache?: CellCache;
  progress?: ProgressReporter;
}

/**
 * Runs the grid and returns one cell per pair, size by size and nJobs 1..max within a size (the seed
 * loops the other way round). Timing all nJobs of one size within seconds of each other means that a
 * change in what else the machine is doing shifts the whole row rather than distorting the speedups.
 */
export async function runGrid(params: GridParams, options: RunGridOptions): Promise<Cell[]> {
  const { timer, cache, progress } = options;
  // Set by the real measurement only, so a result that comes back without it came from the cache.
  let measuredNow = false;
  const measureCell: MeasureCell = async (size, nJobs, tasks, backend, repeats) => {
    measuredNow = true;
    const runs: number[] = [];
    for (let r = 0; r < repeats; r++) runs.push(await timer.time(size, nJobs, tasks, backend));
    return { seconds: median(runs), runs };
  };
  const timed = cache ? cache.wrap(measureCell) : measureCell;
  const total = params.nJobsValues.length * params.sizes.length;
  const cells: Cell[] = [];
  let outcome: 'done' | 'failed' = 'failed';
  try {
    for (const size of params.sizes) {
      for (const nJobs of params.nJobsValues) {
        measuredNow = false;
        const timing = await timed(size, nJobs, params.tasksPerCell, params.backend, params.repeats);
        cells.push({ size, nJobs, seconds: timing.seconds, runs: timing.runs, cached: !measuredNow });
        progress?.update(cells.length, total);
      }
    }
    outcome = 'done';
  } finally {
    progress?.finish(outcome);
    await timer.close();
  }
  return cells;
}
