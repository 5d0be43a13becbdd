/** What the parallel-dispatch benchmark (issue 3) runs: workloads, contenders, sizes, and what a cell reports. */

export const WORKLOADS = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'] as const;
export type WorkloadId = (typeof WORKLOADS)[number];

export const CONTENDERS = ['plain', 'threads', 'processes', 'piscina', 'tinypool', 'workerpool'] as const;
export type ContenderId = (typeof CONTENDERS)[number];
export const PEERS = ['piscina', 'tinypool', 'workerpool'] as const;
export type PeerId = (typeof PEERS)[number];

export function isPeer(contender: ContenderId): contender is PeerId {
  return (PEERS as readonly string[]).includes(contender);
}

/** Workers of every pool. */
export const WORKERS = 2;

export const SIZES = {
  /** W1: `delayed(square)(i)` tasks. */
  w1Tasks: 100_000,
  /** W2: convolutions of two random arrays of `w2Length`. */
  w2Tasks: 16,
  w2Length: 20_000,
  /** W3: tasks of 1 ms of CPU. */
  w3Tasks: 2_000,
  /** W4: tasks that each read the same array of `w4Megabytes`. */
  w4Tasks: 8,
  w4Megabytes: 256,
  /** W5: trivial tasks from a generator. */
  w5Tasks: 2_000_000,
} as const;

export const WORKLOAD_TITLES: Record<WorkloadId, string> = {
  W1: `W1: ${SIZES.w1Tasks.toLocaleString('en-US')} delayed(square)(i), tasks created inside the timing, pool warm`,
  W2: `W2: ${SIZES.w2Tasks} convolutions of two random Float64Array(${SIZES.w2Length.toLocaleString('en-US')}), pool warm`,
  W3: `W3: ${SIZES.w3Tasks.toLocaleString('en-US')} tasks of 1 ms CPU, pool warm`,
  W4: `W4: ${SIZES.w4Tasks} tasks each reading one ${SIZES.w4Megabytes} MB Float64Array, pool warm`,
  W5: `W5: ${SIZES.w5Tasks.toLocaleString('en-US')} trivial tasks from a generator, unordered, pool warm`,
  W6: 'W6: first run() of a fresh pool of 2 workers, one trivial task, pool start-up included (cold)',
};

/** What a cell (one workload × contender × repetition, in its own process) prints as its last line. */
export interface CellResult {
  status: 'ok' | 'na' | 'error';
  /** Wall time of the timed part. */
  ms: number;
  /** Tasks in the timed part. */
  tasks: number;
  /** The process's own peak RSS (kB) at the end of the timed part (`process.resourceUsage().maxRSS`). */
  maxRssKb: number;
  /** W4/W5: memory of the process tree (PSS, kB) just before the timed part. */
  baselineKb?: number;
  /** A value derived from the results, compared across contenders as a sanity check. */
  check?: number;
  note?: string;
  /** The timed part, in microseconds of the monotonic clock (to cut CPU profiles to it). */
  windowUs?: [number, number];
}

export const RESULT_PREFIX = 'BENCH-RESULT ';
