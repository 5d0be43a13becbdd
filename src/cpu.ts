import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { invalidArgument } from './errors.ts';

/**
 * Reads the cgroup CPU quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`), as a
 * container limited with `--cpus=1.5` sees it: ceil(quota / period). Undefined when unlimited or unknown.
 */
function cgroupCpuLimit(): number | undefined {
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const v2 = read('/sys/fs/cgroup/cpu.max');
  if (v2) {
    const [quota, period] = v2.split(/\s+/);
    if (quota && quota !== 'max' && period) return Math.max(1, Math.ceil(Number(quota) / Number(period)));
    return undefined;
  }
  const quota = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const period = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  if (quota > 0 && period > 0) return Math.max(1, Math.ceil(quota / period));
  return undefined;
}

let cached: number | undefined;

/**
 * The number of CPUs this process may really use: the smallest of the machine's CPUs, the CPU
 * affinity mask (`availableParallelism` reads it on Linux), the cgroup quota of a container, and the
 * `JOBLIB_TS_MAX_CPU_COUNT` environment variable. Always at least 1.
 */
export function cpuCount(): number {
  if (cached !== undefined) return cached;
  const limits = [cpus().length || 1, availableParallelism()];
  const quota = cgroupCpuLimit();
  if (quota !== undefined) limits.push(quota);
  const fromEnv = Number(process.env.JOBLIB_TS_MAX_CPU_COUNT);
  if (Number.isInteger(fromEnv) && fromEnv > 0) limits.push(fromEnv);
  cached = Math.max(1, Math.min(...limits));
  return cached;
}

/**
 * Resolves `nJobs` as joblib does: a positive number is used as is (more than the CPUs is allowed),
 * `-1` means all CPUs, `-2` all but one, and so on (never less than 1). `0`, `NaN`, non-integers
 * and non-numbers are refused.
 */
export function effectiveNJobs(nJobs = -1): number {
  if (typeof nJobs !== 'number' || !Number.isInteger(nJobs) || nJobs === 0) {
    throw invalidArgument(
      'nJobs',
      'a non-zero integer (1, 2, ... workers, or -1 for all CPUs, -2 for all but one)',
      nJobs,
    );
  }
  if (nJobs > 0) return nJobs;
  return Math.max(1, cpuCount() + 1 + nJobs);
}
