/**
 * A pool of workers (threads or child processes, behind `WorkerHandle`) that runs batches: picks the
 * least loaded worker, defines each function once per worker, ref's workers only while they hold work
 * (so an idle program exits by itself), and turns a worker's death into an error instead of a hang.
 */
import { deserializeThrown, TaskImportError, WorkerCrashedError } from '../errors.ts';
import type { LocatedFunction } from '../locate/index.ts';
import type { BatchMessage, FromWorker, ToWorker } from '../worker/protocol.ts';
import type { BackendBatch, BatchOutcome } from './backend.ts';

export interface WorkerHandle {
  /** For messages: `thread 3`, `process 12345`. */
  readonly label: string;
  /** Throws when the message cannot be serialized (an argument that cannot be sent). */
  send(message: ToWorker): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<void>;
}

export interface WorkerEvents {
  message(message: FromWorker): void;
  exit(exitCode: number | null, signal: string | null, error: Error | undefined): void;
}

export type SpawnWorker = (events: WorkerEvents) => WorkerHandle;

interface Pending {
  readonly id: number;
  readonly batch: BackendBatch;
  readonly resolve: (outcome: BatchOutcome) => void;
  readonly reject: (error: unknown) => void;
}

interface PooledWorker {
  readonly handle: WorkerHandle;
  readonly outstanding: Pending[];
  readonly knownFunctions: Set<number>;
  alive: boolean;
}

let nextFunctionId = 1;
const functionIds = new WeakMap<LocatedFunction, number>();

function functionId(located: LocatedFunction): number {
  let id = functionIds.get(located);
  if (id === undefined) {
    id = nextFunctionId++;
    functionIds.set(located, id);
  }
  return id;
}

export class WorkerPool {
  private readonly workers: PooledWorker[] = [];
  private nextBatchId = 1;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly spawn: SpawnWorker,
    /** How the backend names a worker kind in crash messages: `worker thread`, `worker process`. */
    private readonly kindLabel: string,
  ) {}

  get workerCount(): number {
    return this.workers.length;
  }

  /** Labels of live workers (for tests and diagnostics). */
  get workerLabels(): string[] {
    return this.workers.map((w) => w.handle.label);
  }

  submit(batch: BackendBatch): Promise<BatchOutcome> {
    if (this.closed) return Promise.reject(new Error('joblib-ts: this worker pool has been closed.'));
    return new Promise<BatchOutcome>((resolve, reject) => {
      this.assign({ id: this.nextBatchId++, batch, resolve, reject });
    });
  }

  /** Sends to other live workers a cancel message (processes); threads read the shared table instead. */
  broadcast(message: ToWorker): void {
    for (const worker of this.workers) {
      if (worker.alive && worker.outstanding.length > 0) {
        try {
          worker.handle.send(message);
        } catch {
          // A dying worker is handled by its exit event.
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const workers = this.workers.splice(0);
    for (const worker of workers) {
      worker.alive = false;
      for (const pending of worker.outstanding.splice(0)) {
        pending.reject(new Error('joblib-ts: the worker pool was closed while this batch was running.'));
      }
    }
    await Promise.all(workers.map((w) => w.handle.terminate()));
  }

  private assign(pending: Pending): void {
    const worker = this.pickWorker();
    const { batch } = pending;
    const ids = batch.locations.map((located) => functionId(located as LocatedFunction));
    const first = ids[0] as number;
    const single = ids.every((id) => id === first);
    const defs: [number, LocatedFunction['ref']][] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (!worker.knownFunctions.has(id) && !defs.some(([d]) => d === id)) {
        defs.push([id, (batch.locations[i] as LocatedFunction).ref]);
      }
    }
    const message: BatchMessage = {
      t: 'batch',
      id: pending.id,
      run: batch.runId,
      fn: single ? first : ids,
      args: batch.args as unknown[][],
    };
    if (defs.length > 0) message.defs = defs;
    try {
      worker.handle.send(message);
    } catch (error) {
      pending.reject(error);
      return;
    }
    for (const [id] of defs) worker.knownFunctions.add(id);
    if (worker.outstanding.length === 0) worker.handle.ref();
    worker.outstanding.push(pending);
  }

  /** The idle worker if any, else a new one while under `size`, else the least loaded. */
  private pickWorker(): PooledWorker {
    let best: PooledWorker | undefined;
    for (const worker of this.workers) {
      if (!best || worker.outstanding.length < best.outstanding.length) best = worker;
    }
    if (best && (best.outstanding.length === 0 || this.workers.length >= this.size)) return best;
    return this.startWorker();
  }

  private startWorker(): PooledWorker {
    const events: WorkerEvents = {
      message: (message) => this.onMessage(worker, message),
      exit: (code, signal, error) => this.onExit(worker, code, signal, error),
    };
    const worker: PooledWorker = {
      handle: this.spawn(events),
      outstanding: [],
      knownFunctions: new Set(),
      alive: true,
    };
    worker.handle.unref();
    this.workers.push(worker);
    return worker;
  }

  private onMessage(worker: PooledWorker, message: FromWorker): void {
    const index = worker.outstanding.findIndex((p) => p.id === message.id);
    if (index < 0) return;
    const [pending] = worker.outstanding.splice(index, 1) as [Pending];
    if (worker.outstanding.length === 0 && worker.alive) worker.handle.unref();
    pending.resolve(this.toOutcome(pending.batch, message));
  }

  private toOutcome(batch: BackendBatch, message: FromWorker): BatchOutcome {
    if (message.t === 'done') return { ok: true, results: message.results };
    if (message.t === 'cancelled') return { ok: 'cancelled', completed: message.completed };
    const located = batch.locations[message.at];
    if (message.importUrl) {
      const cause = deserializeThrown(message.error);
      const reason = cause instanceof Error ? cause.message : String(cause);
      return {
        ok: false,
        failedAt: message.at,
        error: new TaskImportError(
          `A worker could not import the module of ${located?.name ?? 'the task function'} (${message.importUrl}): ${reason}`,
          message.importUrl,
          { cause },
        ),
      };
    }
    return {
      ok: false,
      failedAt: message.at,
      error: deserializeThrown(message.error, (name) => findErrorClass(located, name)),
    };
  }

  private onExit(
    worker: PooledWorker,
    exitCode: number | null,
    signal: string | null,
    error: Error | undefined,
  ): void {
    worker.alive = false;
    const position = this.workers.indexOf(worker);
    if (position >= 0) this.workers.splice(position, 1);
    const [running, ...waiting] = worker.outstanding.splice(0);
    if (running) {
      const { batch } = running;
      const last = batch.firstIndex + batch.fns.length - 1;
      const name = batch.locations[0]?.name ?? batch.fns[0]?.name ?? 'task';
      const which =
        batch.fns.length === 1
          ? `task ${batch.firstIndex} (${name})`
          : `one of tasks ${batch.firstIndex}..${last} (${name})`;
      const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
      const detail = error ? `: ${error.name}: ${error.message}` : '';
      running.reject(
        new WorkerCrashedError(
          `A ${this.kindLabel} (${worker.handle.label}) ${how} while running ${which}${detail}`,
          batch.firstIndex,
          name,
          exitCode,
          signal,
        ),
      );
    }
    // Batches queued behind the crashed one never started: give them to the other workers.
    if (!this.closed) for (const pending of waiting) this.assign(pending);
  }
}

type ErrorClass = new (message?: string) => Error;

/** An error class exported by the task's own module, so that `instanceof` works on the rebuilt error. */
function findErrorClass(located: LocatedFunction | undefined, name: string): ErrorClass | undefined {
  const namespace = located?.namespace;
  if (!namespace) return undefined;
  for (const value of Object.values(namespace)) {
    if (typeof value === 'function' && value.name === name && value.prototype instanceof Error) {
      return value as ErrorClass;
    }
  }
  return undefined;
}
