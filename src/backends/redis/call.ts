/**
 * The state of one `run()` on the Redis backend (a "call"), and what every part of the caller's side
 * shares: options, key layout, connections, worker liveness.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { EventHub } from '../../events.ts';
import type { LocatedFunction } from '../../locate/index.ts';
import type { BackendBatch, BatchOutcome } from '../backend.ts';
import { CallBlobs } from './blobs.ts';
import type { WireFunction } from './codec.ts';
import type { Connections } from './connection.ts';
import type { WorkerLiveness } from './liveness.ts';
import type { Keys, ResolvedBackendOptions } from './options.ts';
import { OutageClock } from './reachability.ts';

export interface CallContext {
  readonly options: ResolvedBackendOptions;
  readonly keys: Keys;
  readonly connections: Connections;
  readonly liveness: WorkerLiveness;
  /** Where the calls' logs and reports go (the backend's hub, listened to by each run). */
  readonly events: EventHub;
}

export interface PendingBatch {
  readonly seq: number;
  readonly batch: BackendBatch;
  readonly resolve: (outcome: BatchOutcome) => void;
  readonly reject: (error: unknown) => void;
  /** The encoded payload, kept until the batch is answered, to submit it again if Redis loses its job. */
  readonly bytes: Buffer;
  flushed: boolean;
  /** Consecutive reconciliations that found no job and no result. */
  misses: number;
  /** Times the job was submitted again after Redis lost it. */
  resubmits: number;
}

export interface Call {
  readonly runId: number;
  readonly id: string;
  /** Settles once the call is connected, a worker is live and its marker is set (or fails). */
  ready: Promise<void>;
  nextSeq: number;
  readonly pending: Map<number, PendingBatch>;
  /** Batches with no answer yet (even after the call stopped waiting): their jobs may still be queued. */
  readonly open: Set<number>;
  toFlush: { seq: number; bytes: Buffer }[];
  readonly blobs: CallBlobs;
  readonly wire: Map<LocatedFunction, WireFunction>;
  /** Payload keys of finished batches, deleted in groups. */
  donePayloads: number[];
  flushScheduled: boolean;
  flushing: Promise<void>;
  timer: NodeJS.Timeout | undefined;
  noWorkersSince: number | undefined;
  stopped: boolean;
  /** Stopped with `abortRun`: running batches are terminated, not left to finish. */
  aborted: boolean;
  ended: boolean;
  /** Settles when the call's results reader has given its connection back. */
  readerDone: Promise<void>;
  /** The results reader's connection while it reads (dropped by a cleanup that cannot wake it). */
  reader: Redis | undefined;
  /** How long the call's periodic check has waited for Redis. */
  readonly clock: OutageClock;
}

export function newCall(runId: number, options: ResolvedBackendOptions): Call {
  return {
    runId,
    id: randomBytes(8).toString('hex'),
    ready: Promise.resolve(),
    nextSeq: 0,
    pending: new Map(),
    open: new Set(),
    toFlush: [],
    blobs: new CallBlobs(),
    wire: new Map(),
    donePayloads: [],
    flushScheduled: false,
    flushing: Promise.resolve(),
    timer: undefined,
    noWorkersSince: undefined,
    stopped: false,
    aborted: false,
    ended: false,
    readerDone: Promise.resolve(),
    reader: undefined,
    clock: new OutageClock(options.reconcileMs),
  };
}

/** Rejects every batch still waiting: the dispatcher fails the run with the first. */
export function failCall(call: Call, error: unknown): void {
  const pending = [...call.pending.values()];
  call.pending.clear();
  for (const p of pending) p.reject(error);
}

/**
 * How long the call's marker lives without a renewal (the lease thread renews it about four times per
 * lifetime): longer than `outageMs`, so that an outage the call rides out does not expire it.
 */
export function markerTtl(options: ResolvedBackendOptions): number {
  return options.leaseMs;
}
