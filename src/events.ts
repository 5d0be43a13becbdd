/**
 * The events of a run, one typed stream for every backend (`onEvent`). Progress bars and verbose lines
 * are built on it; a program feeds its own UI, log or web page from it.
 *
 * This file is the contract between the parts that emit (dispatcher, worker pools, Redis backend) and
 * the parts that listen (Parallel's `onEvent`, progress): types only, plus the hub a backend emits on.
 */

/** Fields every event has. */
interface EventBase {
  /** The run it belongs to (`run()` calls of one `Parallel` get increasing ids). */
  readonly runId: number;
  /** `Date.now()` when it happened, in the caller. */
  readonly time: number;
}

/** Why a worker was replaced although nothing failed. */
export type RecycleReason = 'maxTasksPerWorker' | 'idleTimeout' | 'maxWorkerRssMb';

export type JoblibEvent =
  | (EventBase & {
      readonly type: 'run-start';
      readonly backend: string;
      readonly workers: number;
      /** Number of tasks when the input's length is known. */
      readonly total: number | undefined;
      /** The run's seed (the `seed` option, or the one drawn for this run). */
      readonly seed: number;
    })
  | (EventBase & {
      readonly type: 'task-done';
      readonly index: number;
      readonly attempt: number;
      /** Duration of the task, ms, as measured where it ran (a batch's time shared among its tasks). */
      readonly durationMs: number;
    })
  | (EventBase & {
      readonly type: 'task-failed';
      readonly index: number;
      readonly attempt: number;
      readonly error: unknown;
      /** True when a retry follows (then a `task-retried` event comes next for this index). */
      readonly willRetry: boolean;
    })
  | (EventBase & {
      readonly type: 'task-retried';
      readonly index: number;
      /** The attempt about to start (2 for the first retry). */
      readonly attempt: number;
      readonly delayMs: number;
    })
  | (EventBase & { readonly type: 'worker-started'; readonly worker: string })
  /** Every worker exit (a crash's too: then after its `worker-crashed`). */
  | (EventBase & {
      readonly type: 'worker-exited';
      readonly worker: string;
      readonly exitCode: number | null;
      readonly signal: string | null;
    })
  /** A worker died while it held a task: `worker-exited` follows it, as for every exit. */
  | (EventBase & {
      readonly type: 'worker-crashed';
      readonly worker: string;
      readonly exitCode: number | null;
      readonly signal: string | null;
      /** The task that was running on it, when one was. */
      readonly index: number | undefined;
    })
  | (EventBase & {
      readonly type: 'worker-recycled';
      readonly worker: string;
      readonly reason: RecycleReason;
    })
  | (EventBase & {
      readonly type: 'log';
      readonly index: number | undefined;
      readonly stream: 'stdout' | 'stderr';
      readonly line: string;
    })
  | (EventBase & { readonly type: 'report'; readonly index: number; readonly value: unknown })
  | (EventBase & {
      readonly type: 'run-end';
      readonly status: 'done' | 'failed' | 'aborted';
      readonly completed: number;
      readonly failed: number;
      readonly durationMs: number;
    });

export type JoblibEventType = JoblibEvent['type'];

/** The event of type `T`. */
export type JoblibEventOf<T extends JoblibEventType> = Extract<JoblibEvent, { type: T }>;

/** A distributive Omit: the fields an emitter fills in, the hub adds `time` (and `runId` where it knows it). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type EventDraft = DistributiveOmit<JoblibEvent, 'time'>;

export type EventListener = (event: JoblibEvent) => void;

/**
 * Where a backend (or its worker pool) emits events. A pool serves several runs: a worker event that
 * belongs to no single run goes to every listening run with that run's id (`runId: -1` in the draft).
 * A listener that throws is not allowed to break the run: its error is reported once on stderr.
 */
export class EventHub {
  private readonly listeners = new Map<number, EventListener>();

  /** `runId`'s listener, until the returned function is called. */
  listen(runId: number, listener: EventListener): () => void {
    this.listeners.set(runId, listener);
    return () => {
      if (this.listeners.get(runId) === listener) this.listeners.delete(runId);
    };
  }

  get listening(): boolean {
    return this.listeners.size > 0;
  }

  /** Delivers the event; returns whether any listener received it (a log line nobody took is printed as is). */
  emit(draft: EventDraft): boolean {
    if (this.listeners.size === 0) return false;
    const time = Date.now();
    if (draft.runId >= 0) {
      const listener = this.listeners.get(draft.runId);
      if (listener) deliver(listener, { ...draft, time } as JoblibEvent);
      return listener !== undefined;
    }
    for (const [runId, listener] of this.listeners)
      deliver(listener, { ...draft, runId, time } as JoblibEvent);
    return true;
  }
}

/** Listeners that threw once already: told once, not on every event. */
const warned = new WeakSet<EventListener>();

function deliver(listener: EventListener, event: JoblibEvent): void {
  try {
    listener(event);
  } catch (error) {
    if (warned.has(listener)) return;
    warned.add(listener);
    process.emitWarning(
      `joblib-ts: an onEvent listener threw on a '${event.type}' event (told once; later throws are ignored): ${String(error)}`,
    );
  }
}
