/**
 * The messages between the caller and a worker (thread or child process): one definition for both
 * sides. Functions are defined once per worker (by reference or by value, see function-ref.ts) and
 * named by number afterwards.
 */
import type { SerializedThrown } from '../errors.ts';
import type { FunctionRef } from './function-ref.ts';
import type { PackedArgs } from './packed-numbers.ts';

/** Sent once, when a worker starts (thread: as workerData; process: as the first message). */
export interface WorkerInit {
  /** Threads only: the run-cancellation table shared with the caller (see `cancelSlot`). */
  control?: SharedArrayBuffer;
  /** Directory of the tsx package, to register its loader when a task module is TypeScript. */
  tsxDirectory?: string;
  /** Whether the caller maps stack traces through source maps (it does under tsx). */
  sourceMaps: boolean;
  /** Threads only: two int32 slots where the worker writes [batch id, task position] before each task. */
  position?: SharedArrayBuffer;
}

export interface BatchMessage {
  t: 'batch';
  /** Batch id, unique within the pool. */
  id: number;
  run: number;
  /** Definitions this worker has not seen yet (a function sent by value may need others: its captures). */
  defs?: [id: number, ref: FunctionRef][];
  /** One function id for the whole batch, or one per task. */
  fn: number | number[];
  /** Each task's arguments; empty when they travel in `packed` instead. */
  args: unknown[][];
  /** Some arguments hold tags (functions, class instances: see tagged.ts) to rebuild first. */
  enc?: true;
  /** Definitions of runs that have ended: drop them before this batch. */
  forget?: number[];
  /** All arguments as numbers in one transferred array (see packing.ts). */
  packed?: PackedArgs;
  /** Processes only: report each task's start (the batch has a timeout to enforce). */
  report?: true;
  /** Processes only: some arguments are big arrays spilled to files (see spill.ts). */
  spilled?: true;
  /** Input index of the batch's first task (`taskContext().index`). */
  first?: number;
  /** The run's seed (`taskContext().seed` is derived from it and the task's index). */
  seed?: number;
  /** Which try of these tasks this is (1 unless the run retries; `BackendBatch.attempt`). */
  attempt?: number;
  /** The run's timeoutMs: a task's `signal` is aborted when it runs this long. */
  timeout?: number;
  /** The call's initializer, run once per worker and `key` before the first task that names it. */
  init?: WireInitializer;
  /** Run every task even when one fails; report failures in `failed` (settled mode, retries). */
  keep?: true;
  /** Stop the batch between tasks once resident memory passes this many bytes (`maxWorkerRssMb`). */
  maxRss?: number;
}

export interface WireInitializer {
  /** Names one call configuration: the worker keeps one result per key. */
  key: string;
  fn: number;
  args: unknown[];
}

/** A task of a batch that failed, when the batch keeps going (`keep`). */
export interface FailedTask {
  at: number;
  error: SerializedThrown;
  importUrl?: string;
  unsendableResult?: boolean;
  /** The task stopped on its `taskContext().signal` after running past the batch's timeout. */
  timedOut?: true;
}

/** The worker's memory after a batch: resident set and its own heap in use, bytes. */
export type MemoryReport = [rss: number, heap: number];

export interface CancelMessage {
  t: 'cancel';
  run: number;
}

/** Function references to import now, ahead of the batches that will need them. */
export interface PrefetchMessage {
  t: 'prefetch';
  defs: [id: number, ref: FunctionRef][];
}

export type ToWorker = BatchMessage | CancelMessage | PrefetchMessage;

export type FromWorker =
  /** `results` is a Float64Array (transferred) when every result is a number (see packing.ts). */
  | {
      t: 'done';
      id: number;
      /** Fewer than the batch's tasks when the worker stopped early to be replaced (`maxRss`). */
      results: unknown[] | Float64Array;
      enc?: true;
      /** Tasks that failed, with `keep`. */
      failed?: FailedTask[];
      mem?: MemoryReport;
    }
  | {
      t: 'fail';
      id: number;
      /** Position in the batch of the task that failed; the tasks before it completed. */
      at: number;
      error: SerializedThrown;
      /** Set when the task's module could not be imported (rather than the task throwing). */
      importUrl?: string;
      /** Set when the task ran but its result could not be sent back. */
      unsendableResult?: boolean;
      /** Set when the worker's initializer failed (no task of the batch ran). */
      init?: true;
      /** Set when the task ended after its signal aborted for running past the batch's timeout. */
      timedOut?: true;
      mem?: MemoryReport;
    }
  /** A line a task wrote (`at` -1: the initializer), sent before the batch's answer. */
  | { t: 'log'; id: number; at: number; s: 'stdout' | 'stderr'; line: string }
  /** `taskContext().report(value)`, sent before the batch's answer. */
  | { t: 'report'; id: number; at: number; value: unknown }
  /**
   * The worker is dying (process.exit(), an uncaught throw) in the middle of a batch with `keep`: what
   * the tasks before the one it was on returned, sent on its way out so that they are not run again.
   */
  | { t: 'partial'; id: number; results: unknown[]; failed?: FailedTask[] }
  | { t: 'cancelled'; id: number; completed: number }
  /** Processes only: task `at` of batch `id` is starting (sent when the batch asks for reports). */
  | { t: 'at'; id: number; at: number }
  /** The worker has loaded its entry and takes batches: it no longer counts as starting. */
  | { t: 'ready' };

/** Size of the cancellation table: a run is cancelled when `table[run % SIZE] === run`. */
export const CANCEL_TABLE_SIZE = 1024;

export function cancelSlot(run: number): number {
  return run % CANCEL_TABLE_SIZE;
}
