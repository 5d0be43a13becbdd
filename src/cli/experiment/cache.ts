/**
 * The cache of cell timings, kept in the output folder so that a rerun with the same parameters
 * reads them back instead of measuring again.
 *
 * TODO(memory): switch to `new Memory(dir).cache(measureCell)` once src/memory lands; until then a
 * small JSON-file store behind the same `CellCache` interface.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CellCache, CellTiming, MeasureCell } from './grid.ts';

/** Bump when the meaning of a stored timing changes (workload, warm-up, statistic). */
const FORMAT = 1;

function isTiming(value: unknown): value is CellTiming {
  if (typeof value !== 'object' || value === null) return false;
  const { seconds, runs } = value as Partial<CellTiming>;
  return typeof seconds === 'number' && Array.isArray(runs) && runs.every((r) => typeof r === 'number');
}

export function fileCellCache(dir: string): CellCache {
  return {
    location: dir,
    wrap(measureCell: MeasureCell): MeasureCell {
      return async (...args) => {
        const key = createHash('sha256')
          .update(JSON.stringify([FORMAT, ...args]))
          .digest('hex')
          .slice(0, 32);
        const file = join(dir, `${key}.json`);
        try {
          const stored: unknown = JSON.parse(await readFile(file, 'utf8'));
          if (isTiming(stored)) return stored;
        } catch {
          // not there yet, or unreadable: measure again
        }
        const timing = await measureCell(...args);
        await mkdir(dir, { recursive: true });
        const temp = `${file}.${process.pid}.tmp`;
        await writeFile(temp, JSON.stringify(timing));
        await rename(temp, file);
        return timing;
      };
    },
  };
}
