/**
 * A pool of workers (threads or child processes, behind `WorkerHandle`) that runs batches: picks the
 * least loaded worker, defines each function once per worker, ref's workers only while they hold work
 * (so an idle program exits by itself), and turns a worker's death into an error instead of a hang.
 */
import { functionId } from '../capture/function-ids.ts';
import { mapThrownStacks } from '../capture/stack.ts';
import { findErrorClass } from '../error-class.ts';
import { deserializeThrown, TaskImportError, TimeoutError, WorkerCrashedError } from '../errors.ts';
import type { LocatedFunction } from '../locate/index.ts';
import type { FunctionRef } from '../wire/function-ref.ts';
import { packArgs } from '../wire/packed-numbers.ts';
import type { BatchMessage, FromWorker, ToWorker } from '../wire/protocol.ts';
import { decodeTags } from '../wire/tagged.ts';
import type { BackendBatch, BatchOutcome } from './backend.ts';

/** A batch as the pool sends it: the backend may have replaced big array arguments (`big-arrays/`). */
export interface PoolBatch extends BackendBatch {
  /** Some arguments are big arrays spilled to files (processes), for the worker to read back. */
  readonly spilled?: true;
}

export interface WorkerHandle {
  /** For messages: `thread 3`, `process 12345`. */
  readonly label: string;
  /** Throws when the message cannot be serialized (an argument that cannot be sent). `transfer`: buffers to move, not copy. */
  send(message: ToWorker, transfer?: ArrayBuffer[]): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<void>;
  /**
   * Which task the worker is on: the batch id and the task's position in it, as last reported
   * (threads: a shared-memory slot written before every task; processes: reports when a batch has a
   * timeout, and a last word on the way out).
   */
  position(): { batch: number; at: number } | undefined;
}

export interface WorkerEvents {
  message(message: FromWorker): void;
  /** `error`: what the worker said killed it (an uncaught exception, running out of memory), if anything. */
  exit(exitCode: number | null, signal: string | null, error: Error | undefined): void;
}

export type SpawnWorker = (events: WorkerEvents) => WorkerHandle;

interface Pending {
  readonly id: number;
  /** When a timeout check first saw this batch at the head of its worker's queue. */
  headSince?: number;
  readonly batch: PoolBatch;
  readonly resolve: (outcome: BatchOutcome) => void;
  readonly reject: (error: unknown) => void;
}

interface PooledWorker {
  readonly handle: WorkerHandle;
  /** Batches sent to this worker, in the order it runs them: the first is running. */
  readonly outstanding: Pending[];
  /** Definitions this worker has, by id (to rebuild instances of the classes among them in results). */
  readonly knownFunctions: Map<number, LocatedFunction>;
  /** Hashes of the code sent by value that this worker has compiled: sent again as the hash alone. */
  readonly knownCode: Set<string>;
  /** Definitions of ended runs, for the worker to drop with its next batch. */
  forget: number[];
  alive: boolean;
  /** Whether it holds the event loop open (it does while it has work). */
  refed: boolean;
  /** An unref is pending for the next turn of the event loop. */
  idleCheck: boolean;
  /** Why we are terminating it, so that its exit is not reported as a crash. */
  stopping?: 'abort' | { timeout: TimeoutError };
  /** For timeouts: the position last seen in the running batch, and since when. */
  watched?: { batch: number; at: number; since: number };
}

/** Time a worker may take to start and import a task module before a batch with a timeout counts as late. */
const START_ALLOWANCE_MS = 30_000;

export class WorkerPool {
  private readonly workers: PooledWorker[] = [];
  private nextBatchId = 1;
  private closed = false;
  /** Definitions sent by value, by the run that captured them: forgotten when it ends. */
  private readonly runDefinitions = new Map<number, Set<number>>();

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

  /** Starts every worker now, so that their start-up overlaps the caller's own preparations. */
  warm(): void {
    while (!this.closed && this.workers.length < this.size) this.startWorker();
  }

  submit(batch: PoolBatch): Promise<BatchOutcome> {
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
    if (this.timeoutTimer) clearInterval(this.timeoutTimer);
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
    // Packed at each send, not once: the packed buffer is transferred, and a batch whose worker died
    // is sent again.
    const packed = packArgs(pending.batch.args);
    const worker = this.pickWorker();
    const { batch } = pending;
    const { locations } = batch;
    // Most batches call one function: look its id up once, and build per-task ids only when they differ.
    let located = locations[0] as LocatedFunction;
    let id = functionId(located);
    const first = id;
    let ids: number[] | undefined;
    const defs: LocatedFunction[] = [];
    const taken = new Set<number>();
    if (!worker.knownFunctions.has(id)) definitionsOf(worker, located, defs, taken);
    for (const dep of batch.deps ?? []) definitionsOf(worker, dep, defs, taken);
    for (let i = batch.uniform ? locations.length : 1; i < locations.length; i++) {
      if (locations[i] !== located) {
        located = locations[i] as LocatedFunction;
        id = functionId(located);
        if (!worker.knownFunctions.has(id)) definitionsOf(worker, located, defs, taken);
      }
      if (ids) ids.push(id);
      else if (id !== first) {
        ids = new Array<number>(i).fill(first);
        ids.push(id);
      }
    }
    const message: BatchMessage = {
      t: 'batch',
      id: pending.id,
      run: batch.runId,
      fn: ids ?? first,
      args: packed ? [] : (batch.args as unknown[][]),
    };
    if (packed) message.packed = packed;
    if (defs.length > 0) message.defs = defs.map((d) => wireDefinition(worker, d));
    if (batch.encoded) message.enc = true;
    if (worker.forget.length > 0) message.forget = worker.forget;
    if (batch.timeoutMs !== undefined) message.report = true;
    if (batch.spilled) message.spilled = true;
    try {
      worker.handle.send(message, packed ? [packed.values.buffer as ArrayBuffer] : undefined);
    } catch (error) {
      pending.reject(error);
      return;
    }
    if (message.forget) worker.forget = [];
    this.learned(worker, defs);
    if (defs.length > 0) this.prefetchElsewhere(worker, defs);
    if (!worker.refed) {
      worker.handle.ref();
      worker.refed = true;
    }
    worker.outstanding.push(pending);
    if (batch.timeoutMs !== undefined) this.watchTimeouts(batch.timeoutMs);
  }

  /**
   * Stops a run at once: workers running its batches are terminated (they may be stuck in a CPU loop)
   * and replaced lazily; its queued batches resolve as cancelled without starting.
   */
  abortRun(runId: number): void {
    for (const worker of [...this.workers]) {
      const queued = worker.outstanding.filter((p, i) => i > 0 && p.batch.runId === runId);
      for (const pending of queued) {
        worker.outstanding.splice(worker.outstanding.indexOf(pending), 1);
        pending.resolve({ ok: 'cancelled', completed: 0 });
      }
      if (worker.outstanding[0]?.batch.runId === runId) this.stopWorker(worker, 'abort');
    }
  }

  /** Terminates a worker on purpose; its exit resolves or rejects its running batch as `reason` says. */
  private stopWorker(worker: PooledWorker, reason: NonNullable<PooledWorker['stopping']>): void {
    if (!worker.alive || worker.stopping) return;
    worker.stopping = reason;
    void worker.handle.terminate();
  }

  private timeoutTimer: NodeJS.Timeout | undefined;

  /** Checks running batches that have a timeout, a few times per timeout period, while any exists. */
  private watchTimeouts(timeoutMs: number): void {
    if (this.timeoutTimer) return;
    const every = Math.max(5, Math.min(50, Math.floor(timeoutMs / 5)));
    this.timeoutTimer = setInterval(() => this.checkTimeouts(), every);
    this.timeoutTimer.unref();
  }

  private checkTimeouts(): void {
    const now = performance.now();
    let watching = false;
    for (const worker of this.workers) {
      const running = worker.outstanding[0];
      const timeoutMs = running?.batch.timeoutMs;
      if (!running || timeoutMs === undefined || worker.stopping) continue;
      watching = true;
      const reported = worker.handle.position();
      // The clock starts when the worker says it started the batch, not when the batch was sent:
      // a worker still starting up (or importing the task's module) is not a task running late,
      // unless it never gets there (a module whose top level never returns).
      if (reported?.batch !== running.id) {
        running.headSince ??= now;
        if (now - running.headSince <= timeoutMs + START_ALLOWANCE_MS) continue;
      }
      const at = reported?.batch === running.id ? reported.at : 0;
      const seen = worker.watched;
      if (!seen || seen.batch !== running.id || seen.at !== at) {
        worker.watched = { batch: running.id, at, since: now };
        continue;
      }
      if (now - seen.since <= timeoutMs) continue;
      const { batch } = running;
      const taskIndex = batch.firstIndex + at;
      const name = batch.locations[at]?.name ?? batch.fns[at]?.name ?? 'task';
      this.stopWorker(worker, {
        timeout: new TimeoutError(
          `Task ${taskIndex} (${name}) ran longer than timeoutMs=${timeoutMs}; its ${this.kindLabel} (${worker.handle.label}) was terminated and will be replaced.`,
          taskIndex,
          name,
          timeoutMs,
        ),
      });
    }
    if (!watching && this.timeoutTimer) {
      clearInterval(this.timeoutTimer);
      this.timeoutTimer = undefined;
    }
  }

  /** Records what a worker was sent: its definitions, their code, and which run each snapshot belongs to. */
  private learned(worker: PooledWorker, defs: readonly LocatedFunction[]): void {
    for (const located of defs) {
      const id = functionId(located);
      worker.knownFunctions.set(id, located);
      const { ref } = located;
      if (ref.kind !== 'value') continue;
      if (typeof ref.code !== 'string') worker.knownCode.add(ref.code.hash);
      let ofRun = this.runDefinitions.get(ref.run);
      if (!ofRun) {
        ofRun = new Set();
        this.runDefinitions.set(ref.run, ofRun);
      }
      ofRun.add(id);
    }
  }

  /**
   * A run has ended: the functions it sent by value (its snapshot of their captures) will not be used
   * again. Each worker is told with its next batch, and the pool stops counting them as known.
   */
  forgetRun(runId: number): void {
    const ids = this.runDefinitions.get(runId);
    if (!ids) return;
    this.runDefinitions.delete(runId);
    for (const worker of this.workers) {
      for (const id of ids) if (worker.knownFunctions.delete(id)) worker.forget.push(id);
    }
  }

  /** Tells the other workers about new functions now, so that they import the modules in parallel. */
  private prefetchElsewhere(sentTo: PooledWorker, defs: readonly LocatedFunction[]): void {
    for (const worker of this.workers) {
      if (worker === sentTo || !worker.alive) continue;
      const fresh = defs.filter((d) => !worker.knownFunctions.has(functionId(d)));
      if (fresh.length === 0) continue;
      try {
        worker.handle.send({ t: 'prefetch', defs: fresh.map((d) => wireDefinition(worker, d)) });
        this.learned(worker, fresh);
      } catch {
        // A dying worker: its exit is handled elsewhere, and a new one gets the defs with its batch.
      }
    }
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
      knownFunctions: new Map(),
      knownCode: new Set(),
      forget: [],
      alive: true,
      refed: false,
      idleCheck: false,
    };
    worker.handle.unref();
    this.workers.push(worker);
    return worker;
  }

  private onMessage(worker: PooledWorker, message: FromWorker): void {
    if (message.t === 'at') return;
    const index = worker.outstanding.findIndex((p) => p.id === message.id);
    if (index < 0) return;
    const [pending] = worker.outstanding.splice(index, 1) as [Pending];
    worker.watched = undefined;
    if (worker.outstanding.length === 0 && worker.alive) this.unrefWhenIdle(worker);
    pending.resolve(this.toOutcome(worker, pending.batch, message));
  }

  /**
   * Lets an idle worker stop holding the program open, one turn of the event loop later: the result
   * that made it idle usually dispatches the next batch at once, and ref/unref on every batch cost
   * about 5 % of the main thread on 100,000 trivial tasks (child processes' channels).
   */
  private unrefWhenIdle(worker: PooledWorker): void {
    if (worker.idleCheck) return;
    worker.idleCheck = true;
    setImmediate(() => {
      worker.idleCheck = false;
      if (worker.outstanding.length === 0 && worker.alive && worker.refed) {
        worker.handle.unref();
        worker.refed = false;
      }
    });
  }

  private toOutcome(
    worker: PooledWorker,
    batch: BackendBatch,
    message: Exclude<FromWorker, { t: 'at' }>,
  ): BatchOutcome {
    if (message.t === 'done') {
      // Instances of classes the worker knows come back as instances of the caller's same class.
      if (message.enc) {
        const lookup = (id: number) => worker.knownFunctions.get(id)?.value;
        return { ok: true, results: decodeTags(message.results, lookup) as unknown[] };
      }
      // A typed array of results reads like the array it stands for.
      return { ok: true, results: message.results as unknown[] };
    }
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
    mapThrownStacks(message.error);
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
    const index = this.workers.indexOf(worker);
    if (index >= 0) this.workers.splice(index, 1);
    const [running, ...waiting] = worker.outstanding.splice(0);
    if (running) {
      const stopping = worker.stopping;
      if (stopping === 'abort') running.resolve({ ok: 'cancelled', completed: 0 });
      else if (stopping) running.reject(stopping.timeout);
      else running.reject(this.crashError(worker, running, exitCode, signal, error));
    }
    // Batches queued behind the stopped one never started: give them to the other workers.
    if (!this.closed) for (const pending of waiting) this.assign(pending);
  }

  private crashError(
    worker: PooledWorker,
    running: Pending,
    exitCode: number | null,
    signal: string | null,
    error: Error | undefined,
  ): WorkerCrashedError {
    const { batch } = running;
    const reported = worker.handle.position();
    const at = reported?.batch === running.id ? reported.at : undefined;
    const taskIndex = batch.firstIndex + (at ?? 0);
    const name = batch.locations[at ?? 0]?.name ?? batch.fns[at ?? 0]?.name ?? 'task';
    const which =
      at !== undefined || batch.fns.length === 1
        ? `task ${taskIndex} (${name})`
        : `one of tasks ${batch.firstIndex}..${batch.firstIndex + batch.fns.length - 1} (${name})`;
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    const outOfMemory = (error as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    let detail = error ? `: ${error.name}: ${error.message}` : '';
    if (outOfMemory || signal === 'SIGABRT' || exitCode === 134) {
      detail += ' (it ran out of memory: raise maxWorkerMemoryMb, or make the task use less)';
    } else if (!signal && exitCode !== null && !error) {
      detail += ' (the task, or code it called, ended the worker: process.exit() or a fatal error)';
    }
    return new WorkerCrashedError(
      `A ${this.kindLabel} (${worker.handle.label}) ${how} while running ${which}${detail}`,
      taskIndex,
      name,
      exitCode,
      signal,
    );
  }
}

/** Adds `located` and what it needs (a function sent by value: what it captured) unless the worker has them. */
function definitionsOf(
  worker: PooledWorker,
  located: LocatedFunction,
  into: LocatedFunction[],
  taken: Set<number>,
): void {
  const id = functionId(located);
  if (worker.knownFunctions.has(id) || taken.has(id)) return;
  taken.add(id);
  into.push(located);
  for (const dep of located.deps ?? []) definitionsOf(worker, dep, into, taken);
}

/** A definition as this worker is sent it: code it has compiled before goes as its hash. */
function wireDefinition(worker: PooledWorker, located: LocatedFunction): [number, FunctionRef] {
  const { ref } = located;
  if (ref.kind === 'value' && typeof ref.code !== 'string' && worker.knownCode.has(ref.code.hash))
    return [functionId(located), { ...ref, code: ref.code.hash }];
  return [functionId(located), ref];
}
