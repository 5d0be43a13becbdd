/**
 * A pool of workers (threads or child processes, behind `WorkerHandle`) that runs batches: starts
 * workers only as batches need them, picks the least loaded worker, defines each function once per worker, ref's workers only while they hold work
 * (so an idle program exits by itself), and turns a worker's death into an error instead of a hang.
 */

import { functionId } from '../capture/function-ids.ts';
import { mapThrownStacks } from '../capture/stack.ts';
import { cpuCount } from '../cpu.ts';
import { findErrorClass } from '../error-class.ts';
import {
  deserializeThrown,
  TaskImportError,
  TimeoutError,
  WorkerCrashedError,
  type WorkerForensics,
} from '../errors.ts';
import type { EventDraft, EventHub } from '../events.ts';
import { onInterruptExit } from '../interrupt.ts';
import type { LocatedFunction } from '../locate/index.ts';
import type { FunctionRef } from '../wire/function-ref.ts';
import { packArgs } from '../wire/packed-numbers.ts';
import type { BatchMessage, FailedTask, FromWorker, ToWorker } from '../wire/protocol.ts';
import { decodeTags } from '../wire/tagged.ts';
import type { BackendBatch, BatchOutcome, TaskFailure } from './backend.ts';
import { StderrTail, TAIL_LINES } from './crash-output.ts';
import { describeForensics, summarizeArgs } from './forensics.ts';
import { markInitializerError } from './initializer-error.ts';
import {
  afterAnswer,
  DEFAULT_IDLE_TIMEOUT_MS,
  mayTake,
  newWorkerLife,
  type RecyclingOptions,
  type WorkerLife,
} from './recycling.ts';
import { SHRINK_AFTER_MS, WorkerBudget } from './worker-budget.ts';
import { emitWorkerOutput } from './worker-output.ts';

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
  /** Processes: the last lines it wrote on stderr. */
  stderrTail?(): string[];
}

export interface WorkerEvents {
  message(message: FromWorker): void;
  /**
   * `error`: what the worker said killed it (an uncaught exception, running out of memory), if anything;
   * `stderr`: what it wrote as it died (processes: V8's fatal-error report), kept for the error.
   */
  exit(
    exitCode: number | null,
    signal: string | null,
    error: Error | undefined,
    stderr?: string,
    stderrTail?: string[],
  ): void;
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
  /** Whether it has said it is up (its first message); until then it counts as starting. */
  ready: boolean;
  /** Whether it holds the event loop open (it does while it has work). */
  refed: boolean;
  /** An unref is pending for the next turn of the event loop. */
  idleCheck: boolean;
  /** Why we are terminating it, so that its exit is not reported as a crash. */
  stopping?: 'abort' | 'recycle' | 'shrink' | { timeout: TimeoutError };
  /** Tasks given, memory seen, and whether it is being replaced (recycling.ts). */
  readonly life: WorkerLife;
  /**
   * Processes: the last stderr lines its tasks wrote, which reach the caller as log messages (output
   * capture) rather than on its stderr: part of a crash's `stderrTail`.
   */
  capturedStderr?: StderrTail;
  /** What a dying worker said its running batch's finished tasks gave (`keepGoing` batches). */
  partial?: Extract<FromWorker, { t: 'partial' }>;
  /** For timeouts: the position last seen in the running batch, and since when. */
  watched?: { batch: number; at: number; since: number };
}

/** What the pool keeps of an answered batch to name its tasks: not its arguments. */
interface AnsweredBatch {
  readonly runId: number;
  readonly firstIndex: number;
  readonly fns: BackendBatch['fns'];
  readonly locations: BackendBatch['locations'];
}

/** How many answered batches the pool remembers, for late crashes. */
const ANSWERED_KEPT = 256;

/** The task a crash is blamed on: in the running batch, or in one already answered (`late`). */
interface Culprit {
  readonly batch: AnsweredBatch;
  /** Position in the batch, when the worker said which task it was. */
  readonly at: number | undefined;
  readonly late: boolean;
}

/** Time a worker may take to start and import a task module before a batch with a timeout counts as late. */
const START_ALLOWANCE_MS = 30_000;

/** Pools whose workers have not all exited yet: on Ctrl-C the program closes them and waits for that. */
const openPools = new Set<WorkerPool>();
onInterruptExit({
  stop: async () => {
    await Promise.all([...openPools].map((pool) => pool.close()));
  },
});

export class WorkerPool {
  private readonly workers: PooledWorker[] = [];
  private nextBatchId = 1;
  private closed = false;
  /** Settles once every worker has exited; shared, so that a second close() waits for the first. */
  private closing: Promise<void> | undefined;
  private started = 0;
  /** Batches that wait for a worker: every worker is busy and the pool may not start another yet. */
  private readonly held: Pending[] = [];
  /** Recently answered batches, by id: a task may crash its worker after it returned (a late timer). */
  private readonly answered = new Map<number, AnsweredBatch>();
  /** Runs in progress (between the backend's startRun and endRun). */
  private readonly activeRuns = new Set<number>();
  /** Runs failed by a late crash while none of their batches was in flight: their next batch fails. */
  private readonly lateFailures = new Map<number, WorkerCrashedError>();
  /** Definitions sent by value, by the run that captured them: forgotten when it ends. */
  private readonly runDefinitions = new Map<number, Set<number>>();
  /** Where each run in progress listens for events (its backend's hub). */
  private readonly runHubs = new Map<number, EventHub>();
  /** The hubs of the backends that have run here: where worker events go (`emitWorkerEvent`). */
  private readonly hubs = new Set<EventHub>();
  /** How many workers may be alive (the largest nJobs of the live runs), and how many each run may use. */
  private readonly budget: WorkerBudget;
  /** Stops idle workers beyond the budget's target, a while after it went down. */
  private shrinkTimer: NodeJS.Timeout | undefined;

  constructor(
    /** The pool's size until runs say theirs (`startRun`). */
    size: number,
    private readonly spawn: SpawnWorker,
    /** How the backend names a worker kind in crash messages: `worker thread`, `worker process`. */
    private readonly kindLabel: string,
    /**
     * Workers that may be starting at once. Eight threads booting together on two cores each take
     * four times as long to come up, and the first result waits for them all: starting as many as
     * there are CPUs at a time gives the first result in the time of one start.
     */
    private readonly maxStarting = cpuCount(),
    /** When healthy workers are replaced. */
    private readonly extras: { readonly recycling?: RecyclingOptions } = {},
  ) {
    this.budget = new WorkerBudget(size);
    openPools.add(this);
  }

  get workerCount(): number {
    return this.workers.length;
  }

  /** Labels of live workers (for tests and diagnostics). */
  get workerLabels(): string[] {
    return this.workers.map((w) => w.handle.label);
  }

  /** Workers started since the pool was made, replacements included (for diagnostics and tests). */
  get workersStarted(): number {
    return this.started;
  }

  /** How many workers the pool may have alive now: the largest `nJobs` of its live runs. */
  get targetSize(): number {
    return this.budget.target;
  }

  /**
   * A run begins, which may use `nJobs` workers at once (the pool grows to the largest live demand):
   * a late crash of one of its tasks fails it until `endRun`. `events`: its backend's hub, where the
   * run's logs and reports go, and (kept after the run) where worker events go.
   */
  startRun(runId: number, nJobs = this.budget.target, events?: EventHub): void {
    this.budget.add(runId, nJobs);
    this.activeRuns.add(runId);
    if (events) {
      this.runHubs.set(runId, events);
      this.hubs.add(events);
    }
  }

  /**
   * A worker's event (started, exited, crashed, recycled), emitted on the hub of every backend that
   * has run on this pool (pools are shared by backends of one configuration). A draft with `runId`
   * -1 reaches every listener of each hub, each with its own id: each run in progress, and listeners
   * of worker events outside runs; worker-crashed names its run and reaches that run only.
   */
  private emitWorkerEvent(draft: EventDraft): void {
    for (const hub of this.hubs) hub.emit(draft);
  }

  endRun(runId: number): void {
    this.runHubs.delete(runId);
    this.activeRuns.delete(runId);
    this.lateFailures.delete(runId);
    if (this.budget.remove(runId)) this.shrinkLater();
  }

  /** Workers beyond the budget stop once idle, `SHRINK_AFTER_MS` from now (a next run may want them). */
  private shrinkLater(): void {
    if (this.shrinkTimer || this.closed) return;
    this.shrinkTimer = setTimeout(() => {
      this.shrinkTimer = undefined;
      this.shrink();
    }, SHRINK_AFTER_MS);
    this.shrinkTimer.unref();
  }

  /** Stops idle workers while more than the budget's target are alive; busy ones are checked when idle. */
  private shrink(): void {
    let alive = this.workers.filter((w) => !w.stopping).length;
    for (const worker of this.workers) {
      if (alive <= this.budget.target) return;
      if (worker.stopping || !worker.ready || worker.outstanding.length > 0) continue;
      this.stopWorker(worker, 'shrink');
      alive--;
    }
  }

  submit(batch: PoolBatch): Promise<BatchOutcome> {
    if (this.closed) return Promise.reject(new Error('joblib-ts: this worker pool has been closed.'));
    const late = this.lateFailures.get(batch.runId);
    if (late) return Promise.reject(late);
    return new Promise<BatchOutcome>((resolve, reject) => {
      this.held.push({ id: this.nextBatchId++, batch, resolve, reject });
      this.releaseHeld();
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

  /** Terminates every worker (those being stopped too); settles when all have exited. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    if (this.timeoutTimer) clearInterval(this.timeoutTimer);
    if (this.shrinkTimer) clearTimeout(this.shrinkTimer);
    const workers = this.workers.splice(0);
    for (const pending of this.held.splice(0)) {
      pending.reject(new Error('joblib-ts: the worker pool was closed while this batch was waiting.'));
    }
    for (const worker of workers) {
      worker.alive = false;
      for (const pending of worker.outstanding.splice(0)) {
        pending.reject(new Error('joblib-ts: the worker pool was closed while this batch was running.'));
      }
    }
    this.closing = Promise.all(workers.map((w) => w.handle.terminate())).then(() => {
      openPools.delete(this);
    });
    return this.closing;
  }

  private assign(worker: PooledWorker, pending: Pending): void {
    // Packed at each send, not once: the packed buffer is transferred, and a batch whose worker died
    // is sent again.
    const packed = packArgs(pending.batch.args);
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
    const initLocation = batch.init?.location;
    if (initLocation) definitionsOf(worker, initLocation, defs, taken);
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
    // taskContext(): the tasks' indices, the run's seed, the try, the timeout their signal follows.
    message.first = batch.firstIndex;
    if (batch.seed !== undefined) message.seed = batch.seed;
    if (batch.attempt !== undefined) message.attempt = batch.attempt;
    if (batch.timeoutMs !== undefined) message.timeout = batch.timeoutMs;
    if (batch.init && initLocation)
      message.init = { key: batch.init.key, fn: functionId(initLocation), args: [...batch.init.args] };
    // No per-task report for it: a process names its task on the way out (process.exit, a throw), and
    // a batch whose crash names none (a kill, V8 out of memory) is run again task by task (recovery.ts).
    if (batch.keepGoing) message.keep = true;
    const rssMb = this.extras.recycling?.maxWorkerRssMb;
    if (rssMb !== undefined) message.maxRss = rssMb * 1024 * 1024;
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
    worker.life.assigned += batch.fns.length;
    if (worker.life.idleTimer) {
      clearTimeout(worker.life.idleTimer);
      worker.life.idleTimer = undefined;
    }
    if (batch.timeoutMs !== undefined) this.watchTimeouts(batch.timeoutMs);
  }

  /**
   * Stops a run at once: workers running its batches are terminated (they may be stuck in a CPU loop)
   * and replaced lazily; its queued batches resolve as cancelled without starting.
   */
  abortRun(runId: number): void {
    for (const pending of this.held.filter((p) => p.batch.runId === runId)) {
      this.held.splice(this.held.indexOf(pending), 1);
      pending.resolve({ ok: 'cancelled', completed: 0 });
    }
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
      const forensics = this.forensics(worker, batch.args[at]);
      this.stopWorker(worker, {
        timeout: new TimeoutError(
          `Task ${taskIndex} (${name}) ran longer than timeoutMs=${timeoutMs}; its ${this.kindLabel} (${worker.handle.label}) was terminated and will be replaced.${describeForensics(forensics)}`,
          taskIndex,
          name,
          timeoutMs,
          forensics,
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

  /**
   * For a batch of run `runId`: when the run already has batches on as many workers as its nJobs, the
   * least loaded of those; else the idle worker if any; else a new one while under the budget's target
   * (none while `maxStarting` workers are still starting: the batch is held until one is up or idle);
   * else, at the target, the least loaded. Workers being stopped take nothing but count as alive.
   */
  private pickWorker(pending: Pending): PooledWorker | undefined {
    const { runId } = pending.batch;
    let best: PooledWorker | undefined;
    let bestOwn: PooledWorker | undefined;
    let own = 0;
    let starting = 0;
    const recycling = this.extras.recycling;
    for (const worker of this.workers) {
      if (!worker.ready) starting++;
      // Being replaced, or stopped (an aborted run's, a timed-out task's): its exit makes room.
      if (worker.life.retiring || worker.stopping) continue;
      // A worker that has used up its tasks is replaced once its queue is done (recycling.ts).
      const full = recycling && mayTake(worker.life, pending.batch.fns.length, recycling);
      if (full) {
        this.retire(worker, full);
        continue;
      }
      const load = worker.outstanding.length;
      if (worker.outstanding.some((p) => p.batch.runId === runId)) {
        own++;
        if (!bestOwn || load < bestOwn.outstanding.length) bestOwn = worker;
      }
      if (!best || load < best.outstanding.length) best = worker;
    }
    // A run never has batches on more workers than its own nJobs at once.
    if (bestOwn && own >= this.budget.limitOf(runId)) return bestOwn;
    const target = this.budget.target;
    // A retry after a crash or a timeout goes to a new worker while there is room for one.
    const fresh = pending.batch.freshWorker === true && this.workers.length < target;
    if (best && !fresh && (best.outstanding.length === 0 || this.workers.length >= target)) return best;
    // Workers being replaced still count: the batch waits for one of them to exit.
    if (!best && this.workers.length >= target) return undefined;
    if (starting >= this.maxStarting) return undefined;
    return this.startWorker();
  }

  /**
   * Gives held batches, in order, to workers: on a new batch, and when a worker is up, idle or gone
   * (which frees a place). A batch no worker can take yet stays first in line.
   */
  private releaseHeld(): void {
    while (this.held.length > 0 && !this.closed) {
      const worker = this.pickWorker(this.held[0] as Pending);
      if (!worker) return;
      this.assign(worker, this.held.shift() as Pending);
    }
  }

  private startWorker(): PooledWorker {
    const events: WorkerEvents = {
      message: (message) => this.onMessage(worker, message),
      exit: (code, signal, error, stderr, tail) => this.onExit(worker, code, signal, error, stderr, tail),
    };
    const worker: PooledWorker = {
      handle: this.spawn(events),
      outstanding: [],
      knownFunctions: new Map(),
      knownCode: new Set(),
      forget: [],
      alive: true,
      ready: false,
      refed: false,
      idleCheck: false,
      life: newWorkerLife(),
    };
    worker.handle.unref();
    this.workers.push(worker);
    this.started++;
    return worker;
  }

  private onMessage(worker: PooledWorker, message: FromWorker): void {
    if (!worker.ready) {
      worker.ready = true;
      this.emitWorkerEvent({ type: 'worker-started', runId: -1, worker: worker.handle.label });
      if (message.t === 'ready') {
        this.releaseHeld();
        return;
      }
    }
    if (message.t === 'log' || message.t === 'report') {
      // A running batch's (ahead of its answer), or an answered one's (a timer it left behind).
      const batch =
        worker.outstanding.find((p) => p.id === message.id)?.batch ?? this.answered.get(message.id);
      if (message.t === 'log' && message.s === 'stderr' && worker.handle.stderrTail) {
        worker.capturedStderr ??= new StderrTail();
        worker.capturedStderr.push(`${message.line}\n`);
      }
      if (batch) emitWorkerOutput(this.runHubs.get(batch.runId), batch.runId, batch.firstIndex, message);
      else if (message.t === 'log') process[message.s].write(`${message.line}\n`);
      return;
    }
    if (message.t === 'at' || message.t === 'ready') return;
    if (message.t === 'partial') {
      worker.partial = message;
      return;
    }
    const index = worker.outstanding.findIndex((p) => p.id === message.id);
    if (index < 0) return;
    const [pending] = worker.outstanding.splice(index, 1) as [Pending];
    worker.watched = undefined;
    // Stopped for an aborted run, it finished that batch before its end came: the batches queued
    // behind it (other runs') go to other workers now, or its exit would settle the next one as
    // the aborted run's.
    if (worker.stopping === 'abort' && worker.outstanding.length > 0)
      this.held.unshift(...worker.outstanding.splice(0));
    if (worker.outstanding.length === 0 && worker.alive) this.unrefWhenIdle(worker);
    const recycling = this.extras.recycling;
    const mem = message.t === 'cancelled' ? undefined : message.mem;
    const reason = afterAnswer(worker.life, mem, recycling ?? {});
    if (reason) this.retire(worker, reason);
    if (worker.life.retiring) {
      if (worker.outstanding.length === 0) this.stopWorker(worker, 'recycle');
    } else if (worker.outstanding.length === 0) {
      this.idleWhile(worker);
      if (this.workers.length > this.budget.target) this.shrinkLater();
    }
    const { batch } = pending;
    this.answered.set(pending.id, {
      runId: batch.runId,
      firstIndex: batch.firstIndex,
      fns: batch.fns,
      locations: batch.locations,
    });
    if (this.answered.size > ANSWERED_KEPT) this.answered.delete(this.answered.keys().next().value as number);
    const outcome = this.toOutcome(worker, batch, message);
    // The initializer failed: no task ran, and the run fails with its error as it is.
    if (message.t === 'fail' && message.init && outcome.ok === false)
      pending.reject(markInitializerError(outcome.error));
    else pending.resolve(outcome);
    this.releaseHeld();
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
      // A worker being stopped stays ref'd until it has exited: a batch may wait for its place.
      if (worker.outstanding.length === 0 && worker.alive && worker.refed && !worker.stopping) {
        worker.handle.unref();
        worker.refed = false;
      }
    });
  }

  private toOutcome(
    worker: PooledWorker,
    batch: BackendBatch,
    message: Exclude<FromWorker, { t: 'at' | 'ready' | 'log' | 'report' | 'partial' }>,
  ): BatchOutcome {
    if (message.t === 'done') {
      const failures = message.failed?.map((f) => this.taskFailure(batch, f));
      const extra = failures && failures.length > 0 ? { failures } : {};
      // Instances of classes the worker knows come back as instances of the caller's same class.
      if (message.enc) {
        const lookup = (id: number) => worker.knownFunctions.get(id)?.value;
        return { ok: true, results: decodeTags(message.results, lookup) as unknown[], ...extra };
      }
      // A typed array of results reads like the array it stands for.
      return { ok: true, results: message.results as unknown[], ...extra };
    }
    if (message.t === 'cancelled') return { ok: 'cancelled', completed: message.completed };
    const { at, error } = this.taskFailure(batch, message);
    return { ok: false, failedAt: at, error };
  }

  /**
   * A task's failure as the worker sent it, rebuilt here (its class where the caller knows it): a task
   * that stopped on its timeout signal is a `TimeoutError`, an initializer's failure names the initializer.
   */
  private taskFailure(batch: BackendBatch, message: FailedTask & { init?: true }): TaskFailure {
    if (message.timedOut && batch.timeoutMs !== undefined) {
      const taskIndex = batch.firstIndex + message.at;
      const name = batch.locations[message.at]?.name ?? batch.fns[message.at]?.name ?? 'task';
      const error = new TimeoutError(
        `Task ${taskIndex} (${name}) ran longer than timeoutMs=${batch.timeoutMs}; it stopped when its taskContext().signal aborted.`,
        taskIndex,
        name,
        batch.timeoutMs,
      );
      return { at: message.at, error };
    }
    const located = message.init ? batch.init?.location : batch.locations[message.at];
    if (message.importUrl) {
      const cause = deserializeThrown(message.error);
      const reason = cause instanceof Error ? cause.message : String(cause);
      return {
        at: message.at,
        error: new TaskImportError(
          `A worker could not import the module of ${located?.name ?? 'the task function'} (${message.importUrl}): ${reason}`,
          message.importUrl,
          { cause },
        ),
      };
    }
    mapThrownStacks(message.error);
    const error = deserializeThrown(message.error, (name) => findErrorClass(located, name));
    if (message.unsendableResult && error instanceof Error) {
      // The worker does not know the task's index in the run: name it here.
      const name = located?.name ?? batch.fns[message.at]?.name ?? 'task';
      error.message = `Task ${batch.firstIndex + message.at} (${name}): ${error.message}`;
      const rest = error.stack?.indexOf('\n') ?? -1;
      error.stack = `${error.name}: ${error.message}${rest >= 0 ? error.stack?.slice(rest) : ''}`;
    }
    return { at: message.at, error };
  }

  /** A worker is to be replaced: it takes no new batch, and exits once its queue is done. */
  private retire(worker: PooledWorker, reason: NonNullable<WorkerLife['retiring']>): void {
    if (worker.life.retiring || !worker.alive) return;
    worker.life.retiring = reason;
    this.emitWorkerEvent({ type: 'worker-recycled', runId: -1, worker: worker.handle.label, reason });
    if (worker.outstanding.length === 0) this.stopWorker(worker, 'recycle');
  }

  /** An idle worker exits after `idleTimeoutMs` without a batch (default 300 s, as loky's). */
  private idleWhile(worker: PooledWorker): void {
    const ms = this.extras.recycling?.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (!Number.isFinite(ms) || worker.life.idleTimer) return;
    worker.life.idleTimer = setTimeout(() => {
      worker.life.idleTimer = undefined;
      if (worker.alive && worker.outstanding.length === 0) this.retire(worker, 'idleTimeout');
    }, ms);
    worker.life.idleTimer.unref();
  }

  /** What an error about `worker` tells of it: the task's arguments, its memory, its last stderr lines. */
  private forensics(
    worker: PooledWorker,
    args: readonly unknown[] | undefined,
    stderrTail = worker.handle.stderrTail?.(),
  ): WorkerForensics {
    const { peakRss, peakHeap } = worker.life;
    const captured = worker.capturedStderr?.lines();
    // Its raw stderr and its tasks' captured stderr lines (these came through the IPC channel, last).
    if (captured && captured.length > 0) stderrTail = [...(stderrTail ?? []), ...captured].slice(-TAIL_LINES);
    return {
      worker: worker.handle.label,
      ...(args ? { argsSummary: summarizeArgs(args) } : {}),
      ...(peakRss > 0 ? { peakRssBytes: peakRss } : {}),
      ...(peakHeap > 0 ? { peakHeapBytes: peakHeap } : {}),
      ...(stderrTail && stderrTail.length > 0 ? { stderrTail } : {}),
    };
  }

  /** The results a dying worker sent for the tasks of `pending` before `at`, if it sent them. */
  private partialOf(
    worker: PooledWorker,
    pending: Pending,
    at: number,
  ): { results?: unknown[]; failures?: TaskFailure[] } {
    const partial = worker.partial;
    if (!partial || partial.id !== pending.id || partial.results.length !== at) return {};
    const failures = partial.failed?.map((f) => this.taskFailure(pending.batch, f));
    return { results: partial.results, ...(failures && failures.length > 0 ? { failures } : {}) };
  }

  private onExit(
    worker: PooledWorker,
    exitCode: number | null,
    signal: string | null,
    error: Error | undefined,
    stderr: string | undefined,
    stderrTail?: string[],
  ): void {
    if (worker.life.idleTimer) clearTimeout(worker.life.idleTimer);
    // Closed by the pool: its batches are already settled.
    if (!worker.alive) return;
    worker.alive = false;
    const index = this.workers.indexOf(worker);
    if (index >= 0) this.workers.splice(index, 1);
    const [running, ...waiting] = worker.outstanding.splice(0);
    const stopping = worker.stopping;
    if (stopping === 'abort') running?.resolve({ ok: 'cancelled', completed: 0 });
    else if (stopping === 'recycle' || stopping === 'shrink') {
      // Replaced or shrunk while idle, so nothing should be running on it; if a batch were, it runs
      // elsewhere rather than fail.
      if (running) waiting.unshift(running);
    } else if (stopping) {
      const { timeout } = stopping;
      const at = timeout.taskIndex - (running?.batch.firstIndex ?? 0);
      // A batch that keeps going loses only the task that ran late; the others run again elsewhere.
      if (running?.batch.keepGoing)
        running.resolve({ ok: false, failedAt: at, error: timeout, ...this.partialOf(worker, running, at) });
      else running?.reject(timeout);
    } else {
      const culprit = this.culprit(worker, running, error);
      if (culprit) {
        const crash = this.crashError(worker, culprit, exitCode, signal, error, stderr, stderrTail);
        this.emitWorkerEvent({
          type: 'worker-crashed',
          runId: culprit.batch.runId,
          worker: worker.handle.label,
          exitCode,
          signal,
          index: crash.taskIndex,
        });
        if (running?.batch.keepGoing && !culprit.late && culprit.at !== undefined) {
          // Only the task it was on fails: those before it keep their results (when the worker could
          // say them on its way out), those after it never started.
          running.resolve({
            ok: false,
            failedAt: culprit.at,
            error: crash,
            ...this.partialOf(worker, running, culprit.at),
          });
        } else running?.reject(crash);
        if (culprit.late && culprit.batch.runId !== running?.batch.runId)
          this.failLate(culprit.batch.runId, crash);
      }
    }
    // Every exit is told, a crash's too: after its worker-crashed, before anyone hears of the outcome.
    this.emitWorkerEvent({ type: 'worker-exited', runId: -1, worker: worker.handle.label, exitCode, signal });
    // Batches queued behind the stopped one never started: first in line for the other workers.
    if (!this.closed) this.held.unshift(...waiting);
    this.releaseHeld();
  }

  /**
   * Which task a crash comes from: the one the worker names (threads: the position slots; processes:
   * its last word), in the running batch or, for a timer or promise a task left behind, in a batch
   * already answered; else the running batch as a whole. None for an idle worker that names nothing.
   */
  private culprit(
    worker: PooledWorker,
    running: Pending | undefined,
    error: Error | undefined,
  ): Culprit | undefined {
    const reported = worker.handle.position();
    if (running && reported?.batch === running.id)
      return { batch: running.batch, at: reported.at, late: false };
    const answered = reported && error ? this.answered.get(reported.batch) : undefined;
    if (answered) return { batch: answered, at: reported?.at, late: true };
    return running ? { batch: running.batch, at: undefined, late: false } : undefined;
  }

  /**
   * A task's late crash fails its run, if the run is still going: through one of its batches in
   * flight, or else its next one. A run already over can only be told on stderr.
   */
  private failLate(runId: number, crash: WorkerCrashedError): void {
    if (!this.activeRuns.has(runId)) {
      process.stderr.write(`joblib-ts (the run had already ended): ${crash.message}\n`);
      return;
    }
    for (const worker of this.workers) {
      const pending = worker.outstanding.find((p) => p.batch.runId === runId);
      if (pending) {
        // Rejected where it stands: its answer, when it comes, settles nothing more.
        pending.reject(crash);
        return;
      }
    }
    const held = this.held.findIndex((p) => p.batch.runId === runId);
    if (held >= 0) (this.held.splice(held, 1)[0] as Pending).reject(crash);
    else this.lateFailures.set(runId, crash);
  }

  private crashError(
    worker: PooledWorker,
    culprit: Culprit,
    exitCode: number | null,
    signal: string | null,
    error: Error | undefined,
    stderr: string | undefined,
    stderrTail: string[] | undefined,
  ): WorkerCrashedError {
    const { batch, at, late } = culprit;
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
    const when = late
      ? `: ${which} left behind a timer or promise that failed after the task returned`
      : ` while running ${which}`;
    const args = 'args' in batch && at !== undefined ? (batch.args as BackendBatch['args'])[at] : undefined;
    const forensics = this.forensics(worker, args, stderrTail);
    return new WorkerCrashedError(
      `A ${this.kindLabel} (${worker.handle.label}) ${how}${when}${detail}.${describeForensics(forensics)}`,
      taskIndex,
      name,
      exitCode,
      signal,
      stderr === undefined ? forensics : { workerStderr: stderr, ...forensics },
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
