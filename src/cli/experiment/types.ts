/** The shapes shared by the experiment's grid, figures and report. */

export type BackendName = 'threads' | 'processes' | 'sequential';
export const BACKENDS: readonly BackendName[] = ['threads', 'processes', 'sequential'];

/** What was asked for: the seed's grid of sizes × nJobs, each cell running `tasksPerCell` convolutions. */
export interface GridParams {
  sizes: number[];
  /** 1, 2, ..., maxJobs. */
  nJobsValues: number[];
  /** Convolutions run in every cell: the seed runs `max_jobs` of them whatever `n_jobs` is. */
  tasksPerCell: number;
  repeats: number;
  backend: BackendName;
}

/** One timed cell of the grid. */
export interface Cell {
  size: number;
  nJobs: number;
  /** Median wall-clock time of the repeats, in seconds. */
  seconds: number;
  /** Every repeat's time, in seconds, in the order they ran. */
  runs: number[];
  /** True when the timing was read from the cache instead of measured now. */
  cached: boolean;
}

export interface MachineInfo {
  /** One line for humans: "2 × Intel(R) Xeon(R) ... @ 2.20GHz, 24 GiB, Linux 6.1 x64, Node v20.20.2". */
  description: string;
  cpuModel: string;
  /** Logical CPUs the OS reports. */
  logicalCpus: number;
  /** CPUs joblib-ts may use (affinity mask, cgroup quota, JOBLIB_TS_MAX_CPU_COUNT): `cpuCount()`. */
  usableCpus: number;
  totalMemoryBytes: number;
  platform: string;
  arch: string;
  osRelease: string;
  node: string;
  hostname: string;
  /**
   * The 1-minute load average when the grid started (0 where the OS has none). Timings taken while other
   * programs keep the CPUs busy are noisy, and can even show more speedup than there are CPUs.
   */
  loadAverage: number;
}

export interface ExperimentResult {
  params: GridParams;
  cells: Cell[];
  machine: MachineInfo;
  /** ISO time the run started. */
  date: string;
  /** Seconds the whole run took, cache reads included. */
  totalSeconds: number;
}
