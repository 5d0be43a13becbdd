/** The real timer: runs each cell's convolutions with `Parallel` and times them with performance.now(). */
import { delayed, Parallel } from '../../index.ts';
import { convolveRandom } from '../../workloads/convolve.ts';
import type { Timer } from './grid.ts';
import type { BackendName } from './types.ts';

/** Size of the untimed warm-up tasks: enough to load the workload module in every worker. */
const WARM_UP_SIZE = 64;

/**
 * Keeps one `Parallel` for the nJobs being timed. Its first use runs one small untimed task per
 * worker, so that starting workers and importing the workload (paid once per pool, as joblib pays
 * it once per executor) is not charged to the timed runs. Moving on to another nJobs closes the
 * previous pool: pools for every nJobs at once would hold 1 + 2 + ... + maxJobs workers.
 */
export function createParallelTimer(): Timer {
  let current: { key: string; parallel: Parallel } | undefined;

  async function parallelFor(nJobs: number, backend: BackendName): Promise<Parallel> {
    const key = `${backend}/${nJobs}`;
    if (current?.key === key) return current.parallel;
    await current?.parallel.close();
    current = undefined;
    const parallel = new Parallel({ nJobs, backend, verbose: 0 });
    await parallel.run(Array.from({ length: nJobs }, () => delayed(convolveRandom)(WARM_UP_SIZE)));
    current = { key, parallel };
    return parallel;
  }

  return {
    async time(size, nJobs, tasks, backend) {
      const parallel = await parallelFor(nJobs, backend);
      const batch = Array.from({ length: tasks }, () => delayed(convolveRandom)(size));
      const start = performance.now();
      await parallel.run(batch);
      return (performance.now() - start) / 1000;
    },
    async close() {
      const open = current;
      current = undefined;
      await open?.parallel.close();
    },
  };
}
