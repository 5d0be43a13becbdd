/**
 * The caller's side of the Redis backend, as the dispatcher sees it. Each batch becomes one BullMQ job
 * (added in bulk, submit.ts); its arguments go to a key of their own (binary MessagePack, encode.ts,
 * blobs.ts), and the worker pushes the outcome to the call's results list (results.ts). BullMQ's events
 * are never relied upon: a timer reconciles the call's jobs with their state in Redis and with the
 * workers' heartbeats (reconcile.ts, liveness.ts), so nothing can hang silently, and rides out a Redis
 * outage up to `outageMs` (reachability.ts). A thread of its own renews each call's lease (lease.ts),
 * so a busy event loop does not lose the call. This class only coordinates: it keeps the calls, and
 * connections hold the program only while one runs.
 */
import { EventHub } from '../../events.ts';
import type { BackendBatch, BatchOutcome, ParallelBackend } from '../backend.ts';
import { type Call, type CallContext, failCall, markerTtl, newCall } from './call.ts';
import { cleanupCall } from './cleanup.ts';
import { Connections } from './connection.ts';
import { BY_VALUE_HINT, encodeBatch } from './encode.ts';
import { leaseFor } from './lease.ts';
import { type LiveWorkers, WorkerLiveness } from './liveness.ts';
import {
  Keys,
  type RedisBackendOptions,
  type ResolvedBackendOptions,
  resolveBackendOptions,
} from './options.ts';
import { answerWithin, unreachableError } from './reachability.ts';
import { tick } from './reconcile.ts';
import { readResults } from './results.ts';
import { stopCall } from './stop.ts';
import { flushCall } from './submit.ts';

export class RedisBackend implements ParallelBackend {
  readonly name = 'RedisBackend';
  readonly inProcess = false;
  readonly options: ResolvedBackendOptions;
  /** Its runs' logs and reports, as the workers sent them with each batch's outcome. */
  readonly events = new EventHub();
  private readonly ctx: CallContext;
  private readonly calls = new Map<number, Call>();
  private readonly cleanups = new Set<Promise<void>>();
  private preparing = 0;
  /** A cleanup gave up on Redis: once idle, drop the connections rather than reconnect forever. */
  private unanswered = false;

  constructor(
    options: RedisBackendOptions,
    /** What `concurrency` says before any worker has been seen. */
    private readonly fallbackConcurrency = 1,
  ) {
    this.options = resolveBackendOptions(options);
    const keys = new Keys(this.options.prefix, this.options.queue);
    this.ctx = {
      options: this.options,
      keys,
      connections: new Connections(
        this.options,
        () => this.calls.size > 0 || this.cleanups.size > 0 || this.preparing > 0,
      ),
      liveness: new WorkerLiveness(this.options, keys, this.events),
      events: this.events,
    };
  }

  /**
   * Functions no worker can import travel by value (signed) only with a secret shared with the workers;
   * without one, only exported functions run, and the refusal says how to share one.
   */
  get byValue(): boolean {
    return this.options.secret !== undefined;
  }

  get byValueHint(): string | undefined {
    return this.options.secret ? undefined : BY_VALUE_HINT;
  }

  /** The live workers' total concurrency (as last seen), else the nJobs asked for. */
  get concurrency(): number {
    const live = this.ctx.liveness.concurrency;
    return live > 0 ? live : this.fallbackConcurrency;
  }

  /** Connects and waits for a live worker, so that `concurrency` is the cluster's. Safe to call often. */
  async prepare(): Promise<void> {
    // Nothing else may keep the program alive while it waits for Redis: hold the connections meanwhile.
    this.preparing++;
    this.ctx.connections.updateRefs();
    try {
      const conn = await this.ctx.connections.connect();
      await this.ctx.liveness.waitForAny(conn.client);
    } finally {
      this.preparing--;
      this.ctx.connections.updateRefs();
    }
  }

  /** The workers registered on the queue now, with their concurrency. */
  async liveWorkers(): Promise<LiveWorkers> {
    const conn = await this.ctx.connections.connect();
    return this.ctx.liveness.read(conn.client);
  }

  startRun(runId: number): void {
    const call = newCall(runId, this.options);
    this.calls.set(runId, call);
    call.ready = this.openCall(call);
    call.ready.catch((error: unknown) => failCall(call, error));
  }

  runBatch(batch: BackendBatch): Promise<BatchOutcome> {
    const call = this.calls.get(batch.runId);
    if (!call || call.ended) {
      return Promise.reject(new Error('joblib-ts internal error: runBatch outside a run.'));
    }
    const seq = call.nextSeq++;
    let bytes: Buffer;
    try {
      bytes = encodeBatch(call, batch, this.options);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<BatchOutcome>((resolve, reject) => {
      call.pending.set(seq, { seq, batch, resolve, reject, bytes, flushed: false, misses: 0, resubmits: 0 });
      call.open.add(seq);
      call.toFlush.push({ seq, bytes });
      if (!call.flushScheduled) {
        call.flushScheduled = true;
        // Batches dispatched together go out together: one pipeline of payloads, one bulk add.
        setImmediate(() => {
          call.flushScheduled = false;
          call.flushing = call.flushing.then(() => flushCall(this.ctx, call));
        });
      }
    });
  }

  cancelRun(runId: number): void {
    const call = this.calls.get(runId);
    if (call) stopCall(this.ctx, call, false);
  }

  /** As cancelRun, and the workers also stop the batches they are running (terminating their processes). */
  abortRun(runId: number): void {
    const call = this.calls.get(runId);
    if (call) stopCall(this.ctx, call, true);
  }

  endRun(runId: number): void {
    const call = this.calls.get(runId);
    if (!call) return;
    this.calls.delete(runId);
    call.ended = true;
    if (call.timer) clearInterval(call.timer);
    leaseFor(this.options.connection).release(this.ctx.keys.marker(call.id));
    if (call.pending.size > 0) stopCall(this.ctx, call, false);
    const cleanup = cleanupCall(this.ctx, call).then((done) => {
      if (!done) this.unanswered = true;
      this.cleanups.delete(cleanup);
      if (this.unanswered && this.idle) {
        this.unanswered = false;
        void this.ctx.connections.close();
      }
      this.ctx.connections.updateRefs();
    });
    this.cleanups.add(cleanup);
  }

  /** Returns within a few seconds whatever Redis does: cleanups are bounded, then connections dropped. */
  async close(): Promise<void> {
    for (const runId of [...this.calls.keys()]) this.endRun(runId);
    await Promise.allSettled([...this.cleanups]);
    await this.ctx.connections.close();
  }

  private get idle(): boolean {
    return this.calls.size === 0 && this.cleanups.size === 0 && this.preparing === 0;
  }

  /**
   * Connects, waits for a live worker, sets the call's marker and hands it to the lease thread, then
   * starts its watchdog and results reader.
   */
  private async openCall(call: Call): Promise<void> {
    const { connections, liveness, keys, options } = this.ctx;
    connections.updateRefs();
    const conn = await connections.connect();
    connections.updateRefs();
    await liveness.waitForAny(conn.client);
    if (call.ended) return;
    const marker = keys.marker(call.id);
    const started = Date.now();
    await answerWithin(conn.client.set(marker, '1', 'PX', markerTtl(options)), options.outageMs, () =>
      unreachableError(options.connection, Date.now() - started, options.outageMs),
    );
    if (call.ended) return;
    leaseFor(options.connection).hold(marker, markerTtl(options));
    call.timer = setInterval(() => tick(this.ctx, call, conn), options.reconcileMs);
    call.timer.unref();
    call.readerDone = readResults(this.ctx, call, conn);
  }
}
