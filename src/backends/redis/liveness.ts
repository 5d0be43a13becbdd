/**
 * Which workers serve the queue: each one keeps a registration in Redis alive with its heartbeat, so a
 * missing registration is a dead worker. Their summed concurrency is the backend's.
 */
import type { Redis } from 'ioredis';
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

  constructor(
    private readonly options: ResolvedBackendOptions,
    private readonly keys: Keys,
  ) {}

  /** The workers registered now; registrations whose heartbeat expired are pruned from the set. */
  async read(client: Redis): Promise<LiveWorkers> {
    const ids = await client.smembers(this.keys.workerSet);
    if (ids.length === 0) {
      this.concurrency = 0;
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
    return { workers, concurrency };
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
