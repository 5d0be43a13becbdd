/**
 * What the threads and processes backends share: a reusable pool per backend kind and worker
 * configuration, kept across `run()` calls and across `Parallel` instances (as joblib's reusable
 * executor), and shut down after a long idle time.
 *
 * One worker budget per pool (issue 18, `worker-budget.ts`): runs of every `nJobs` share the pool,
 * which grows to the largest `nJobs` of its live runs and shrinks back, and each run uses at most its
 * own `nJobs` workers at once. Only what changes a worker itself makes another pool: the memory cap
 * (`maxWorkerMemoryMb`: a thread's resource limits, a process's `--max-old-space-size`) and the
 * recycling limits (`maxTasksPerWorker`, `idleTimeoutMs`, `maxWorkerRssMb`). The flags a
 * worker inherits (`execArgv`) are the program's own, the same for every pool.
 */

import { EventHub } from '../events.ts';
import { unclonableReason } from '../wire/clonable.ts';
import type { BackendBatch, BatchOutcome, ParallelBackend } from './backend.ts';
import { replaceBigViews } from './big-arrays/replace.ts';
import { type PoolBatch, type WorkerEvents, type WorkerHandle, WorkerPool } from './pool.ts';
import type { RecyclingOptions } from './recycling.ts';

const IDLE_SHUTDOWN_MS = 300_000;

/** Why one of the batch's arguments would lose its meaning in a worker, if one would. */
function firstUnclonableArgument(batch: BackendBatch): string | undefined {
  for (const args of batch.args) {
    for (const arg of args) {
      if (arg === null || typeof arg !== 'object') continue;
      const reason = unclonableReason(arg);
      if (reason !== undefined) return reason;
    }
  }
  return undefined;
}

interface SharedPool {
  readonly kind: string;
  readonly key: string;
  readonly pool: WorkerPool;
  activeRuns: number;
  retiring: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

/** The pools in use, by kind and configuration (`kind/key`). */
const pools = new Map<string, SharedPool>();
/** The configuration each kind was last asked for: a pool of another one closes when its last run ends. */
const latestKey = new Map<string, string>();

/** Stops handing the pool to new runs; closes it now if no run uses it, else when the last one ends. */
function retire(shared: SharedPool): Promise<void> {
  shared.retiring = true;
  if (shared.idleTimer) clearTimeout(shared.idleTimer);
  const id = `${shared.kind}/${shared.key}`;
  if (pools.get(id) === shared) pools.delete(id);
  return shared.activeRuns === 0 ? shared.pool.close() : Promise.resolve();
}

export abstract class WorkerBackend implements ParallelBackend {
  abstract readonly name: string;
  readonly inProcess = false;
  readonly byValue = true;
  /**
   * Its runs' worker events (started, exited, crashed, recycled), logs and reports: the pool emits them
   * to the hub of each run's backend (`startRun`).
   */
  readonly events = new EventHub();
  /** The pool of the latest run (for diagnostics)... */
  private shared: SharedPool | undefined;
  /**
   * ...and each run's own: a run goes on in the pool it started in, even when a later run of this
   * backend got another one (the first was retired meanwhile: closed by another `Parallel` sharing it).
   */
  private readonly runs = new Map<number, SharedPool>();
  /**
   * Every pool this backend handed a run: a run that has ended may still be aborted (a stream left
   * early stops its running tasks a moment after it ended), and the pool it ran in is among these.
   */
  private readonly usedPools = new Set<SharedPool>();

  constructor(
    readonly concurrency: number,
    protected readonly maxWorkerMemoryMb?: number,
    /** Typed-array arguments this big are sent the backend's own way (`bigArrays`); null: never. */
    private readonly maxNbytes: number | null = 1024 * 1024,
    /** When healthy workers are replaced (`maxTasksPerWorker`, `idleTimeoutMs`, `maxWorkerRssMb`). */
    protected readonly recycling: RecyclingOptions = {},
  ) {}

  /** Backends of one kind share their pools... */
  protected abstract readonly poolKind: string;
  /** What one worker is called in messages: `worker thread`, `worker process`. */
  protected abstract readonly workerKind: string;
  /** Starts one worker of this kind. */
  protected abstract spawnWorker(events: WorkerEvents): WorkerHandle;
  protected abstract cancelInWorkers(pool: WorkerPool, runId: number): void;
  /** How this backend sends big typed arrays: which it takes, and what travels in their place. */
  protected abstract readonly bigArrays: {
    accepts(view: ArrayBufferView): boolean;
    replace(runId: number, view: ArrayBufferView): unknown;
    /** The run has ended: let go of what `replace` made for it. */
    release(runId: number): void;
    /** Set on batches whose big arrays were replaced, for the worker to read them back. */
    readonly spilled?: true;
  };

  /** ...one per configuration that changes a worker (memory cap, recycling limits), whatever their nJobs. */
  private poolKey(): string {
    const { maxTasksPerWorker, idleTimeoutMs, maxWorkerRssMb } = this.recycling;
    return `${this.maxWorkerMemoryMb ?? ''}/${maxTasksPerWorker ?? ''}/${idleTimeoutMs ?? ''}/${maxWorkerRssMb ?? ''}`;
  }

  private createPool(): WorkerPool {
    return new WorkerPool(
      this.concurrency,
      (events) => this.spawnWorker(events),
      this.workerKind,
      undefined,
      {
        recycling: this.recycling,
      },
    );
  }

  /**
   * The batch with its big array arguments sent this backend's way. Done here, once per batch, before
   * the pool sees it: a pool serves every backend of its configuration, whatever their `maxNbytes`.
   */
  private withBigArrays(batch: BackendBatch): PoolBatch {
    const limit = this.maxNbytes;
    if (limit === null) return batch;
    const { accepts, replace, spilled } = this.bigArrays;
    const args = replaceBigViews(batch, limit, accepts, (view) => replace(batch.runId, view));
    if (!args) return batch;
    return spilled ? { ...batch, args, spilled } : { ...batch, args };
  }

  /** The live workers' labels, for diagnostics and tests. */
  get workerLabels(): string[] {
    return this.shared?.pool.workerLabels ?? [];
  }

  /** How many workers the current pool has started since it was made (for diagnostics and tests). */
  get workersStarted(): number {
    return this.shared?.pool.workersStarted ?? 0;
  }

  startRun(runId: number): void {
    const key = this.poolKey();
    const kind = this.poolKind;
    latestKey.set(kind, key);
    let shared = pools.get(`${kind}/${key}`);
    if (!shared) {
      // Idle pools of this kind with another configuration are not wanted any more.
      for (const other of pools.values())
        if (other.kind === kind && other.activeRuns === 0) void retire(other);
      shared = { kind, key, pool: this.createPool(), activeRuns: 0, retiring: false, idleTimer: undefined };
      pools.set(`${kind}/${key}`, shared);
    }
    if (shared.idleTimer) clearTimeout(shared.idleTimer);
    shared.idleTimer = undefined;
    shared.activeRuns++;
    this.shared = shared;
    shared.pool.startRun(runId, this.concurrency, this.events);
    this.runs.set(runId, shared);
    this.usedPools.add(shared);
  }

  endRun(runId: number): void {
    this.bigArrays.release(runId);
    const shared = this.runs.get(runId);
    if (!shared) return;
    this.runs.delete(runId);
    shared.pool.endRun(runId);
    shared.pool.forgetRun(runId);
    shared.activeRuns--;
    if (shared.activeRuns > 0) return;
    if (shared.retiring) {
      void shared.pool.close();
      return;
    }
    if (latestKey.get(shared.kind) !== shared.key) {
      void retire(shared);
      return;
    }
    shared.idleTimer = setTimeout(() => void retire(shared), IDLE_SHUTDOWN_MS);
    shared.idleTimer.unref();
  }

  runBatch(batch: BackendBatch): Promise<BatchOutcome> {
    const shared = this.runs.get(batch.runId);
    if (!shared) return Promise.reject(new Error('joblib-ts internal error: runBatch outside a run.'));
    // An argument that would arrive without its class is refused before anything is sent (the
    // dispatcher then names the task and the argument).
    const lost = firstUnclonableArgument(batch);
    if (lost !== undefined) return Promise.reject(new TypeError(lost));
    let prepared: PoolBatch;
    try {
      prepared = this.withBigArrays(batch);
    } catch (error) {
      return Promise.reject(error);
    }
    return shared.pool.submit(prepared);
  }

  cancelRun(runId: number): void {
    const shared = this.runs.get(runId);
    if (shared) this.cancelInWorkers(shared.pool, runId);
  }

  /** Also after the run ended: a stream left early stops its still-running tasks a moment later. */
  abortRun(runId: number): void {
    const live = this.runs.get(runId);
    for (const shared of live ? [live] : this.usedPools) {
      this.cancelInWorkers(shared.pool, runId);
      shared.pool.abortRun(runId);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.usedPools];
    this.usedPools.clear();
    this.shared = undefined;
    await Promise.all(pools.map(retire));
  }
}
