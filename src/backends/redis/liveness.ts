/**
 * Which workers serve the queue: each one keeps a registration in Redis alive with its heartbeat, so a
 * missing registration is a dead worker. Their summed concurrency is the backend's.
 *
 * The worker events of Redis workers, as far as a caller can know them, come from these reads while a
 * run listens: a registration seen for the first time is `worker-started`; one that expired (its
 * worker stopped beating without unregistering: killed, or its machine lost) is `worker-crashed`, then
 * `worker-exited`; one removed (a worker that stopped gracefully) is `worker-exited`.
 */
import type { Redis } from 'ioredis';
import type { EventHub } from '../../events.ts';
import { NoRedisWorkerError } from './errors.ts';
import { describeConnection, type Keys, type ResolvedBackendOptions } from './options.ts';
import { answerWithin, unreachableError } from './reachability.ts';
import type { WorkerInfo } from './worker.ts';

export interface LiveWorkers {
  readonly workers: WorkerInfo[];
  readonly concurrency: number;
}

export class WorkerLiveness {
  /** The live workers' total concurrency as last read (0 before the first read, or with none live). */
  concurrency = 0;

  /** Workers told to the runs as started, and not yet as exited. */
  private readonly told = new Set<string>();
  /** Reads started, and the latest one whose answer was told: an older answer that comes later is not. */
  private reads = 0;
  private toldRead = 0;

  constructor(
    private readonly options: ResolvedBackendOptions,
    private readonly keys: Keys,
    /** Where the worker events go (the backend's hub). */
    private readonly events?: EventHub,
  ) {}

  /** The workers registered now; registrations whose heartbeat expired are pruned from the set. */
  async read(client: Redis): Promise<LiveWorkers> {
    const read = ++this.reads;
    const ids = await client.smembers(this.keys.workerSet);
    if (ids.length === 0) {
      this.concurrency = 0;
      this.tell(read, [], []);
      return { workers: [], concurrency: 0 };
    }
    const values = await client.mget(ids.map((id) => this.keys.worker(id)));
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
    if (dead.length > 0) await client.srem(this.keys.workerSet, ...dead);
    const concurrency = workers.reduce((sum, w) => sum + (Number(w.concurrency) || 0), 0);
    this.concurrency = concurrency;
    this.tell(read, workers, dead);
    return { workers, concurrency };
  }

  /**
   * The changes since the last read told, as worker events to the runs listening now (none listening:
   * nothing is told, and the next listened read tells the difference). A worker whose expired
   * registration another caller pruned first looks unregistered here: told as exited only.
   */
  private tell(read: number, workers: readonly WorkerInfo[], dead: readonly string[]): void {
    const { events } = this;
    if (!events?.listening || read < this.toldRead) return;
    this.toldRead = read;
    const live = new Set(workers.map((w) => String(w.id)));
    for (const worker of this.told) {
      if (live.has(worker)) continue;
      this.told.delete(worker);
      if (dead.includes(worker))
        events.emit({
          type: 'worker-crashed',
          runId: -1,
          worker,
          exitCode: null,
          signal: null,
          index: undefined,
        });
      events.emit({ type: 'worker-exited', runId: -1, worker, exitCode: null, signal: null });
    }
    for (const worker of live) {
      if (this.told.has(worker)) continue;
      this.told.add(worker);
      events.emit({ type: 'worker-started', runId: -1, worker });
    }
  }

  /**
   * Resolves once a worker is live; fails after `workerWaitMs` with how to start one, or when Redis does
   * not answer for `outageMs`.
   */
  async waitForAny(client: Redis): Promise<void> {
    const started = Date.now();
    for (;;) {
      const asked = Date.now();
      const { connection, outageMs } = this.options;
      const live = await answerWithin(this.read(client), outageMs, () =>
        unreachableError(connection, Date.now() - asked, outageMs),
      );
      if (live.workers.length > 0) return;
      const waited = Date.now() - started;
      if (waited >= this.options.workerWaitMs) throw this.noWorkerError(waited);
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, this.options.workerWaitMs - waited)));
    }
  }

  /** The error for a queue nobody serves, with the command that starts a worker for it. */
  noWorkerError(waitedMs: number): NoRedisWorkerError {
    const { connection, queue, prefix, workerWaitMs } = this.options;
    const where = describeConnection(connection);
    const flags = `${queue === 'joblib-ts' ? '' : ` --queue ${queue}`}${prefix === 'joblib-ts' ? '' : ` --prefix ${prefix}`}`;
    return new NoRedisWorkerError(
      `No joblib-ts worker is serving queue '${queue}' (prefix '${prefix}') at ${where}: waited ${(waitedMs / 1000).toFixed(1)} s. Start one on each machine that should run tasks, in a copy of this project:\n  REDIS_URL=${where} npx joblib-ts worker --root .${flags}\n(or --redis URL instead of REDIS_URL; set the backend option workerWaitMs, now ${workerWaitMs} ms, to wait longer).`,
    );
  }
}
