/**
 * The cache of cell timings: a joblib-ts `Memory` in the output folder, so that a rerun with the same
 * parameters reads the timings back instead of measuring again.
 */
import { Memory } from '../../memory/index.ts';
import type { CellCache, MeasureCell } from './grid.ts';

/**
 * Bump when the meaning of a stored timing changes (the workload, the warm-up, the statistic): the
 * explicit version keeps entries valid across edits of the code around the measurement, which do not
 * change what it measures.
 */
const CELL_VERSION = '1';

export function memoryCellCache(dir: string): CellCache {
  const memory = new Memory(dir);
  return {
    location: dir,
    wrap(measureCell: MeasureCell): MeasureCell {
      return memory.cache(measureCell, { name: 'joblib-ts-experiment-cell', version: CELL_VERSION });
    },
  };
}
