/**
 * When a healthy worker is replaced: after `maxTasksPerWorker` tasks, after `idleTimeoutMs` without
 * work, or (processes) once its resident memory passes `maxWorkerRssMb`. The options, their checks,
 * and the per-worker bookkeeping the pool asks about between batches.
 */
import { describeValue, InvalidArgumentError } from '../errors.ts';
import type { RecycleReason } from '../events.ts';

export interface RecyclingOptions {
  /** A worker is replaced once it has been given this many tasks (batch sizes are capped to fit). */
  readonly maxTasksPerWorker?: number;
  /** An idle worker exits after this long without a task (ms; default 300,000 as loky's). */
  readonly idleTimeoutMs?: number;
  /** Processes: a worker whose resident memory passes this (MB) is replaced between tasks. */
  readonly maxWorkerRssMb?: number;
}

/** loky's default: idle workers exit after 300 s. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

function bad(name: string, expected: string, got: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${name} must be ${expected}; got ${describeValue(got)}.`);
}

/** Checks the recycling options; `backend` is the resolved backend name. */
export function checkRecycling(options: RecyclingOptions, backend: string): void {
  const { maxTasksPerWorker, idleTimeoutMs, maxWorkerRssMb } = options;
  if (backend === 'redis') {
    const given = Object.entries(options).find(([, value]) => value !== undefined)?.[0];
    if (given)
      throw new InvalidArgumentError(
        `${given} is not an option of backend 'redis': its workers are started and managed by \`joblib-ts worker\`, not by the caller.`,
      );
  }
  if (
    maxTasksPerWorker !== undefined &&
    (typeof maxTasksPerWorker !== 'number' || !Number.isInteger(maxTasksPerWorker) || maxTasksPerWorker < 1)
  )
    throw bad('maxTasksPerWorker', 'a positive integer', maxTasksPerWorker);
  if (
    idleTimeoutMs !== undefined &&
    (typeof idleTimeoutMs !== 'number' || Number.isNaN(idleTimeoutMs) || idleTimeoutMs <= 0)
  )
    throw bad('idleTimeoutMs', 'a number of milliseconds > 0 (Infinity: never)', idleTimeoutMs);
  if (maxWorkerRssMb !== undefined) {
    if (typeof maxWorkerRssMb !== 'number' || !Number.isFinite(maxWorkerRssMb) || maxWorkerRssMb <= 0)
      throw bad('maxWorkerRssMb', 'a number of megabytes > 0', maxWorkerRssMb);
    if (backend !== 'processes')
      throw new InvalidArgumentError(
        `maxWorkerRssMb applies to backend 'processes' only (threads share one process's memory; use maxWorkerMemoryMb for a thread's heap limit); got backend ${JSON.stringify(backend)}.`,
      );
  }
}

/** What the pool keeps per worker to decide when to replace it. */
export interface WorkerLife {
  /** Tasks given to it so far (queued ones included). */
  assigned: number;
  /** Why it is being replaced, once decided: it takes no new batch, and exits once idle. */
  retiring?: RecycleReason;
  /** Its resident memory and heap as last reported (bytes), and the highest seen. */
  rss: number;
  heap: number;
  peakRss: number;
  peakHeap: number;
  idleTimer?: NodeJS.Timeout;
}

export function newWorkerLife(): WorkerLife {
  return { assigned: 0, rss: 0, heap: 0, peakRss: 0, peakHeap: 0 };
}

/** Whether a worker may take a batch of `size` tasks, or must first be replaced (and why). */
export function mayTake(
  life: WorkerLife,
  size: number,
  options: RecyclingOptions,
): RecycleReason | undefined {
  const max = options.maxTasksPerWorker;
  if (max !== undefined && life.assigned > 0 && life.assigned + size > max) return 'maxTasksPerWorker';
  return undefined;
}

/** After an answer: records the memory it reported; a reason when the worker is now to be replaced. */
export function afterAnswer(
  life: WorkerLife,
  memory: readonly [rss: number, heap: number] | undefined,
  options: RecyclingOptions,
): RecycleReason | undefined {
  if (memory) {
    life.rss = memory[0];
    life.heap = memory[1];
    if (memory[0] > life.peakRss) life.peakRss = memory[0];
    if (memory[1] > life.peakHeap) life.peakHeap = memory[1];
  }
  if (options.maxWorkerRssMb !== undefined && life.rss > options.maxWorkerRssMb * 1024 * 1024)
    return 'maxWorkerRssMb';
  if (options.maxTasksPerWorker !== undefined && life.assigned >= options.maxTasksPerWorker)
    return 'maxTasksPerWorker';
  return undefined;
}

/** How a recycling shows in verbose output. */
export function recycledLine(worker: string, reason: RecycleReason, options: RecyclingOptions): string {
  switch (reason) {
    case 'maxTasksPerWorker':
      return `Replacing ${worker}: it ran maxTasksPerWorker=${options.maxTasksPerWorker} tasks.`;
    case 'idleTimeout':
      return `Stopping ${worker}: idle for idleTimeoutMs=${options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS}.`;
    case 'maxWorkerRssMb':
      return `Replacing ${worker}: its memory passed maxWorkerRssMb=${options.maxWorkerRssMb}.`;
  }
}
