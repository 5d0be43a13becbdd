/**
 * The caller's side of the Redis backend. Each batch becomes one BullMQ job (added in bulk); its
 * arguments go to a key of their own (binary MessagePack), and the worker pushes the outcome to the
 * call's results list, read with a blocking pop. BullMQ's events are never relied upon: a timer
 * reconciles the call's jobs with their state in Redis (failed, vanished) and with the workers'
 * heartbeats, so nothing can hang silently.
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type ErrorClass, findErrorClass } from '../../error-class.ts';
import * as coreErrors from '../../errors.ts';
import { deserializeThrown } from '../../errors.ts';
import { hashBytes } from '../../hash.ts';
import type { LocatedFunction } from '../../locate/index.ts';
import type { BackendBatch, BatchOutcome, ParallelBackend } from '../backend.ts';
import {
  type BatchPayload,
  BlobRef,
  checkArgument,
  pack,
  unpack,
  type WireFunction,
  type WireOutcome,
} from './codec.ts';
import { ModuleRefusedError, NoRedisWorkerError, RedisBackendError, VersionSkewError } from './errors.ts';
import { toWire } from './modules.ts';
import {
  createClient,
  describeConnection,
  Keys,
  type RedisBackendOptions,
  type ResolvedBackendOptions,
  resolveBackendOptions,
  scrub,
} from './options.ts';
import type { WorkerInfo } from './worker.ts';

/** joblib-ts's own error classes, so that a worker's TaskImportError or TimeoutError is one here too. */
const OWN_ERRORS: Record<string, ErrorClass> = { ModuleRefusedError, VersionSkewError, RedisBackendError };
for (const value of Object.values(coreErrors)) {
  if (typeof value === 'function' && value.prototype instanceof Error)
    OWN_ERRORS[value.name] = value as ErrorClass;
}

interface PendingBatch {
  readonly seq: number;
  readonly batch: BackendBatch;
  readonly resolve: (outcome: BatchOutcome) => void;
  readonly reject: (error: unknown) => void;
  flushed: boolean;
  /** Consecutive reconciliations that found no job and no result. */
  misses: number;
}

interface Call {
  readonly runId: number;
  readonly id: string;
  readonly ready: Promise<void>;
  nextSeq: number;
  readonly pending: Map<number, PendingBatch>;
  /** Batches with no answer yet (even after the call stopped waiting): their jobs may still be queued. */
  readonly open: Set<number>;
  toFlush: { seq: number; bytes: Buffer }[];
  readonly blobsToFlush: Map<string, Buffer>;
  readonly uploadedBlobs: Set<string>;
  readonly blobOf: WeakMap<object, string>;
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
}

interface Connection {
  readonly client: Redis;
  readonly queue: Queue;
  readonly idleReaders: Redis[];
}

export interface LiveWorkers {
  readonly workers: WorkerInfo[];
  readonly concurrency: number;
}

function setRefed(client: Redis, refed: boolean): void {
  const stream = (client as unknown as { stream?: { ref?: () => void; unref?: () => void } }).stream;
  if (refed) stream?.ref?.();
  else stream?.unref?.();
}

export class RedisBackend implements ParallelBackend {
  readonly name = 'RedisBackend';
  readonly inProcess = false;
  readonly options: ResolvedBackendOptions;
  private readonly keys: Keys;
  private connecting: Promise<Connection> | undefined;
  private liveConcurrency = 0;
  private readonly calls = new Map<number, Call>();
  private readonly cleanups = new Set<Promise<void>>();
  private readonly clients = new Set<Redis>();

  constructor(
    options: RedisBackendOptions,
    /** What `concurrency` says before any worker has been seen. */
    private readonly fallbackConcurrency = 1,
  ) {
    this.options = resolveBackendOptions(options);
    this.keys = new Keys(this.options.prefix, this.options.queue);
  }

  /** The live workers' total concurrency (as last seen), else the nJobs asked for. */
  get concurrency(): number {
    return this.liveConcurrency > 0 ? this.liveConcurrency : this.fallbackConcurrency;
  }

  /** Connects and waits for a live worker, so that `concurrency` is the cluster's. Safe to call often. */
  async prepare(): Promise<void> {
    // Nothing else may keep the program alive while it waits for Redis: hold the connections meanwhile.
    this.preparing++;
    this.updateRefs();
    try {
      const conn = await this.connect();
      await this.waitForWorkers(conn);
    } finally {
      this.preparing--;
      this.updateRefs();
    }
  }

  private preparing = 0;

  /** The workers registered on the queue now, with their concurrency. */
  async liveWorkers(): Promise<LiveWorkers> {
    const conn = await this.connect();
    return this.readWorkers(conn);
  }

  startRun(runId: number): void {
    const call: Call = {
      runId,
      id: randomBytes(8).toString('hex'),
      ready: Promise.resolve(),
      nextSeq: 0,
      pending: new Map(),
      open: new Set(),
      toFlush: [],
      blobsToFlush: new Map(),
      uploadedBlobs: new Set(),
      blobOf: new WeakMap(),
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
    };
    (call as { ready: Promise<void> }).ready = this.openCall(call);
    call.ready.catch((error: unknown) => this.failCall(call, error));
    this.calls.set(runId, call);
  }

  runBatch(batch: BackendBatch): Promise<BatchOutcome> {
    const call = this.calls.get(batch.runId);
    if (!call || call.ended) {
      return Promise.reject(new Error('joblib-ts internal error: runBatch outside a run.'));
    }
    const seq = call.nextSeq++;
    let bytes: Buffer;
    try {
      bytes = this.encode(call, batch);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<BatchOutcome>((resolve, reject) => {
      call.pending.set(seq, { seq, batch, resolve, reject, flushed: false, misses: 0 });
      call.open.add(seq);
      call.toFlush.push({ seq, bytes });
      if (!call.flushScheduled) {
        call.flushScheduled = true;
        // Batches dispatched together go out together: one pipeline of payloads, one bulk add.
        setImmediate(() => {
          call.flushScheduled = false;
          call.flushing = call.flushing.then(() => this.flush(call));
        });
      }
    });
  }

  cancelRun(runId: number): void {
    const call = this.calls.get(runId);
    if (call) this.stopCall(call, false);
  }

  /** As cancelRun, and the workers also stop the batches they are running (terminating their processes). */
  abortRun(runId: number): void {
    const call = this.calls.get(runId);
    if (call) this.stopCall(call, true);
  }

  endRun(runId: number): void {
    const call = this.calls.get(runId);
    if (!call) return;
    this.calls.delete(runId);
    call.ended = true;
    if (call.timer) clearInterval(call.timer);
    if (call.pending.size > 0) this.stopCall(call, false);
    const cleanup = this.cleanup(call).finally(() => {
      this.cleanups.delete(cleanup);
      this.updateRefs();
    });
    this.cleanups.add(cleanup);
  }

  async close(): Promise<void> {
    for (const runId of [...this.calls.keys()]) this.endRun(runId);
    await Promise.allSettled([...this.cleanups]);
    const connecting = this.connecting;
    this.connecting = undefined;
    if (connecting) {
      try {
        const conn = await connecting;
        await conn.queue.close();
      } catch {
        // Never connected: nothing to close.
      }
    }
    for (const client of this.clients) client.disconnect();
    this.clients.clear();
  }

  // ------------------------------------------------------------------------------------------
  // Connection and workers
  // ------------------------------------------------------------------------------------------

  private connect(): Promise<Connection> {
    this.connecting ??= (async () => {
      const { connection, queue, prefix } = this.options;
      const client = this.newClient(false, 'joblib-ts-caller');
      try {
        await client.ping();
      } catch (error) {
        this.clients.delete(client);
        client.disconnect();
        this.connecting = undefined;
        throw new RedisBackendError(
          `Cannot reach Redis at ${describeConnection(connection)}: ${scrub((error as Error).message)}`,
        );
      }
      const bullQueue = new Queue(queue, {
        connection: client,
        prefix,
        streams: { events: { maxLen: 100 } },
      });
      bullQueue.on('error', () => {});
      return { client, queue: bullQueue, idleReaders: [] };
    })();
    return this.connecting;
  }

  private newClient(blocking: boolean, name: string): Redis {
    const client = createClient(this.options.connection, { blocking, name });
    this.clients.add(client);
    client.on('connect', () => setRefed(client, this.calls.size > 0 || this.preparing > 0));
    return client;
  }

  /** While no call runs, connections do not keep the program alive (as idle local workers do not). */
  private updateRefs(): void {
    const refed = this.calls.size > 0 || this.cleanups.size > 0 || this.preparing > 0;
    for (const client of this.clients) setRefed(client, refed);
  }

  private async readWorkers(conn: Connection): Promise<LiveWorkers> {
    const ids = await conn.client.smembers(this.keys.workerSet);
    if (ids.length === 0) {
      this.liveConcurrency = 0;
      return { workers: [], concurrency: 0 };
    }
    const values = await conn.client.mget(ids.map((id) => this.keys.worker(id)));
    const workers: WorkerInfo[] = [];
    const dead: string[] = [];
    values.forEach((value, i) => {
      if (value === null) {
        dead.push(ids[i] as string);
        return;
      }
      try {
        workers.push(JSON.parse(value) as WorkerInfo);
      } catch {
        dead.push(ids[i] as string);
      }
    });
    if (dead.length > 0) await conn.client.srem(this.keys.workerSet, ...dead);
    const concurrency = workers.reduce((sum, w) => sum + (Number(w.concurrency) || 0), 0);
    this.liveConcurrency = concurrency;
    return { workers, concurrency };
  }

  private noWorkerError(waitedMs: number): NoRedisWorkerError {
    const { connection, queue, prefix, workerWaitMs } = this.options;
    const where = describeConnection(connection);
    const flags = `${queue === 'joblib-ts' ? '' : ` --queue ${queue}`}${prefix === 'joblib-ts' ? '' : ` --prefix ${prefix}`}`;
    return new NoRedisWorkerError(
      `No joblib-ts worker is serving queue '${queue}' (prefix '${prefix}') at ${where}: waited ${(waitedMs / 1000).toFixed(1)} s. Start one on each machine that should run tasks, in a copy of this project:\n  REDIS_URL=${where} npx joblib-ts worker --root .${flags}\n(or --redis URL instead of REDIS_URL; set the backend option workerWaitMs, now ${workerWaitMs} ms, to wait longer).`,
    );
  }

  private async waitForWorkers(conn: Connection): Promise<void> {
    const started = Date.now();
    for (;;) {
      const live = await this.readWorkers(conn);
      if (live.workers.length > 0) return;
      const waited = Date.now() - started;
      if (waited >= this.options.workerWaitMs) throw this.noWorkerError(waited);
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, this.options.workerWaitMs - waited)));
    }
  }

  // ------------------------------------------------------------------------------------------
  // One call
  // ------------------------------------------------------------------------------------------

  private markerTtl(): number {
    return Math.max(60_000, 10 * this.options.reconcileMs);
  }

  private async openCall(call: Call): Promise<void> {
    this.updateRefs();
    const conn = await this.connect();
    this.updateRefs();
    await this.waitForWorkers(conn);
    if (call.ended) return;
    await conn.client.set(this.keys.marker(call.id), '1', 'PX', this.markerTtl());
    call.timer = setInterval(() => void this.reconcile(call, conn), this.options.reconcileMs);
    call.timer.unref();
    call.readerDone = this.readResults(call, conn);
  }

  /** Turns a batch into its payload bytes; throws for an argument or function that cannot travel. */
  private encode(call: Call, batch: BackendBatch): Buffer {
    const fns: WireFunction[] = [];
    const fnIndex = new Map<LocatedFunction, number>();
    const f: number[] = [];
    const count = batch.args.length;
    for (let i = 0; i < count; i++) {
      const located = batch.locations[i];
      if (!located)
        throw new Error('joblib-ts internal error: a task without location reached the Redis backend.');
      let k = fnIndex.get(located);
      if (k === undefined) {
        let wire = call.wire.get(located);
        if (!wire) {
          wire = toWire(located, this.options.root);
          call.wire.set(located, wire);
        }
        k = fns.length;
        fns.push(wire);
        fnIndex.set(located, k);
      }
      f.push(k);
    }
    const threshold = this.options.largeArgumentBytes;
    const args: unknown[][] = new Array(count);
    for (let t = 0; t < count; t++) {
      const taskArgs = batch.args[t] as readonly unknown[];
      const out: unknown[] = new Array(taskArgs.length);
      for (let a = 0; a < taskArgs.length; a++) {
        const value = taskArgs[a];
        if (value !== null && typeof value === 'object') {
          const known = call.blobOf.get(value);
          if (known) {
            out[a] = new BlobRef(known);
            continue;
          }
        }
        const name = batch.locations[t]?.name ?? 'task';
        const size = checkArgument(value, batch.firstIndex + t, a, name);
        out[a] = size > threshold ? new BlobRef(this.storeBlob(call, value)) : value;
      }
      args[t] = out;
    }
    const single = f.every((k) => k === f[0]);
    const { timeoutMs } = batch;
    const payload: BatchPayload = {
      v: 1,
      first: batch.firstIndex,
      fns,
      f: single ? (f[0] ?? 0) : f,
      a: args,
      ...(timeoutMs === undefined ? {} : { t: timeoutMs }),
    };
    return pack(payload);
  }

  /** Encodes a large argument once per call, by content hash; the bytes go out with the next flush. */
  private storeBlob(call: Call, value: unknown): string {
    const bytes = pack(value);
    const hash = hashBytes(bytes);
    if (!call.uploadedBlobs.has(hash)) {
      call.uploadedBlobs.add(hash);
      call.blobsToFlush.set(hash, bytes);
    }
    if (value !== null && typeof value === 'object') call.blobOf.set(value, hash);
    return hash;
  }

  private async flush(call: Call): Promise<void> {
    const items = call.toFlush;
    call.toFlush = [];
    if (items.length === 0) return;
    try {
      await call.ready;
    } catch {
      return; // failCall has rejected every pending batch.
    }
    if (call.ended || call.stopped) return;
    const { client, queue } = await this.connect();
    const { keyTtlMs } = this.options;
    try {
      const pipeline = client.pipeline();
      for (const [hash, bytes] of call.blobsToFlush)
        pipeline.set(this.keys.blob(call.id, hash), bytes, 'PX', keyTtlMs);
      call.blobsToFlush.clear();
      for (const { seq, bytes } of items)
        pipeline.set(this.keys.payload(call.id, seq), bytes, 'PX', keyTtlMs);
      const replies = (await pipeline.exec()) ?? [];
      const failed = replies.find(([error]) => error);
      if (failed) throw failed[0];
      await queue.addBulk(
        items.map(({ seq }) => ({
          name: 'batch',
          data: { c: call.id, s: seq, ttl: keyTtlMs },
          opts: {
            jobId: this.keys.jobId(call.id, seq),
            removeOnComplete: true,
            removeOnFail: false,
            attempts: 1,
          },
        })),
      );
      for (const { seq } of items) {
        const pending = call.pending.get(seq);
        if (pending) pending.flushed = true;
      }
    } catch (error) {
      this.failCall(
        call,
        new RedisBackendError(
          `Could not submit tasks to Redis at ${describeConnection(this.options.connection)}: ${scrub((error as Error).message)}`,
        ),
      );
    }
  }

  private takeReader(conn: Connection): Redis {
    const reader = conn.idleReaders.pop() ?? this.newClient(true, 'joblib-ts-results');
    setRefed(reader, true);
    return reader;
  }

  private async readResults(call: Call, conn: Connection): Promise<void> {
    const reader = this.takeReader(conn);
    const key = this.keys.results(call.id);
    let broken = false;
    try {
      while (!call.ended && !call.stopped) {
        const item = await reader.blpopBuffer(key, 1);
        // An empty item is the wake-up pushed when the call ends.
        if (item && item[1].length > 0) this.onResult(call, conn, item[1]);
      }
    } catch (error) {
      broken = true;
      this.failCall(
        call,
        new RedisBackendError(
          `Lost the connection to Redis while waiting for results: ${scrub((error as Error).message)}`,
        ),
      );
    } finally {
      if (broken || !this.clients.has(reader)) {
        this.clients.delete(reader);
        reader.disconnect();
      } else {
        setRefed(reader, false);
        conn.idleReaders.push(reader);
      }
    }
  }

  private onResult(call: Call, conn: Connection, bytes: Buffer): void {
    let outcome: WireOutcome;
    try {
      outcome = unpack(bytes) as WireOutcome;
    } catch (error) {
      this.failCall(
        call,
        new RedisBackendError(`A worker sent a result this caller cannot read: ${(error as Error).message}`),
      );
      return;
    }
    call.open.delete(outcome.s);
    const pending = call.pending.get(outcome.s);
    // A batch that ran twice (its first worker died after answering) answers twice: keep the first.
    if (!pending) return;
    call.pending.delete(outcome.s);
    call.donePayloads.push(outcome.s);
    if (call.donePayloads.length >= 64) {
      const seqs = call.donePayloads;
      call.donePayloads = [];
      conn.client.unlink(...seqs.map((s) => this.keys.payload(call.id, s))).catch(() => {});
    }
    const { batch } = pending;
    switch (outcome.ok) {
      case true:
        pending.resolve({ ok: true, results: outcome.r });
        return;
      case 'cancelled':
        pending.resolve({ ok: 'cancelled', completed: outcome.completed });
        return;
      case 'infra':
        pending.reject(
          new RedisBackendError(
            `A worker on ${outcome.host} could not run tasks ${batch.firstIndex}..${batch.firstIndex + batch.args.length - 1}: ${outcome.message}`,
          ),
        );
        return;
      default: {
        const located = batch.locations[outcome.at];
        const error = deserializeThrown(
          outcome.e,
          (name) => findErrorClass(located, name) ?? OWN_ERRORS[name],
        );
        if (error !== null && typeof error === 'object') {
          try {
            Object.assign(error, { host: outcome.host, worker: outcome.worker });
          } catch {
            // A frozen thrown value stays as it is.
          }
        }
        pending.resolve({ ok: false, failedAt: outcome.at, error });
      }
    }
  }

  /** Compares what the call waits for with the jobs' state in Redis and the workers' heartbeats. */
  private async reconcile(call: Call, conn: Connection): Promise<void> {
    if (call.ended || call.stopped) return;
    try {
      const flushed = [...call.pending.values()].filter((p) => p.flushed);
      const pipeline = conn.client.pipeline();
      pipeline.pexpire(this.keys.marker(call.id), this.markerTtl());
      pipeline.llen(this.keys.results(call.id));
      for (const p of flushed) pipeline.hmget(this.keys.jobKey(call.id, p.seq), 'timestamp', 'failedReason');
      const replies = (await pipeline.exec()) ?? [];
      const waitingResults = Number(replies[1]?.[1] ?? 0);
      for (let i = 0; i < flushed.length; i++) {
        const p = flushed[i] as PendingBatch;
        if (!call.pending.has(p.seq)) continue;
        const [timestamp, failedReason] = (replies[i + 2]?.[1] ?? [null, null]) as (string | null)[];
        const jobId = this.keys.jobId(call.id, p.seq);
        const tasks = `tasks ${p.batch.firstIndex}..${p.batch.firstIndex + p.batch.args.length - 1}`;
        if (failedReason) {
          this.failCall(
            call,
            new RedisBackendError(`Job ${jobId} (${tasks}) failed in the queue: ${failedReason}`),
          );
          return;
        }
        if (timestamp === null && waitingResults === 0) {
          p.misses++;
          if (p.misses >= 2) {
            this.failCall(
              call,
              new RedisBackendError(
                `Job ${jobId} (${tasks}) vanished from the queue without a result (its keys were deleted or expired).`,
              ),
            );
            return;
          }
        } else {
          p.misses = 0;
        }
      }
      const live = await this.readWorkers(conn);
      if (live.workers.length > 0 || call.pending.size === 0) {
        call.noWorkersSince = undefined;
      } else {
        call.noWorkersSince ??= Date.now();
        const waited = Date.now() - call.noWorkersSince;
        if (waited >= this.options.workerWaitMs) this.failCall(call, this.noWorkerError(waited));
      }
    } catch {
      // A failed check is retried at the next tick; a dead connection shows up in the reader.
    }
  }

  /** Rejects every batch still waiting: the dispatcher fails the run with the first. */
  private failCall(call: Call, error: unknown): void {
    const pending = [...call.pending.values()];
    call.pending.clear();
    for (const p of pending) p.reject(error);
  }

  /**
   * Stops the call's work: workers skip its jobs and stop its running batches between tasks (with
   * `abort`, at once: they terminate the local processes that run them).
   */
  private stopCall(call: Call, abort: boolean): void {
    if (call.stopped && (!abort || call.aborted)) return;
    call.stopped = true;
    if (abort) call.aborted = true;
    const pending = [...call.pending.values()];
    call.pending.clear();
    for (const p of pending) p.resolve({ ok: 'cancelled', completed: 0 });
    if (!this.connecting) return;
    const stopping = (async () => {
      const conn = await this.connect();
      await conn.client
        .multi()
        .del(this.keys.marker(call.id))
        .publish(this.keys.cancelChannel, abort ? `!${call.id}` : call.id)
        .exec();
    })().catch(() => {});
    call.flushing = call.flushing.then(() => stopping);
  }

  /** Deletes every key of the call: marker, results, payloads, large arguments, and its jobs still queued. */
  private async cleanup(call: Call): Promise<void> {
    if (!this.connecting) return;
    let conn: Connection;
    try {
      await call.ready;
    } catch {
      // Even a call that never started may have set keys: fall through.
    }
    try {
      conn = await this.connect();
    } catch {
      return;
    }
    await call.flushing.catch(() => {});
    // Wake the results reader (blocked in BLPOP) so its connection serves the next call at once.
    await conn.client.rpush(this.keys.results(call.id), '').catch(() => 0);
    await call.readerDone;
    const keys: string[] = [this.keys.marker(call.id), this.keys.results(call.id)];
    for (let seq = 0; seq < call.nextSeq; seq++) keys.push(this.keys.payload(call.id, seq));
    for (const hash of call.uploadedBlobs) keys.push(this.keys.blob(call.id, hash));
    try {
      for (let i = 0; i < keys.length; i += 1000) await conn.client.unlink(...keys.slice(i, i + 1000));
      // Jobs not known to be finished: queued ones are removed; running ones finish (or stop) and go.
      const open = [...call.open].map((seq) => this.keys.jobId(call.id, seq));
      await Promise.all(open.map((id) => conn.queue.remove(id).catch(() => 0)));
    } catch {
      // Keys expire by themselves (keyTtlMs).
    }
  }
}
