/**
 * Shared-memory copies of big typed arrays for the threads backend: an array passed to many tasks of a run
 * is copied once into a SharedArrayBuffer, and every task reads that copy.
 *
 * A copy outlives its run for a while (`KEEP_IDLE_MS`): a later run with the same array writes the array's
 * current bytes into the same memory, 42 ms for 256 MB here against 106 ms for fresh memory (whose pages
 * fault in), and needs no new 256 MB. Worker threads free the copies they were sent late (when their own
 * collector runs): before copies were reused, ten runs on one 256 MB array grew the program to 3 GB and each
 * run took 3x longer from the fourth on. An idle copy is let go after `KEEP_IDLE_MS`, so a program that used
 * a big array once does not hold twice its size for good.
 */

/** How long a copy no run uses is kept for the next run with the same array. */
export const KEEP_IDLE_MS = 10_000;

type ViewConstructor = new (buffer: SharedArrayBuffer, byteOffset: number, length: number) => ArrayBufferView;

interface SharedCopy {
  readonly copy: ArrayBufferView;
  /** The caller's array, weakly: the copy never keeps it alive. */
  readonly source: WeakRef<ArrayBufferView>;
  readonly runs: Set<number>;
  idleSince: number;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** The same bytes and element type, on a SharedArrayBuffer: structured clone then shares it instead of copying. */
function copyToShared(view: ArrayBufferView): ArrayBufferView {
  const shared = new SharedArrayBuffer(view.byteLength);
  new Uint8Array(shared).set(bytesOf(view));
  if (view instanceof DataView) return new DataView(shared);
  const Ctor = view.constructor as ViewConstructor & { BYTES_PER_ELEMENT: number };
  return new Ctor(shared, 0, view.byteLength / Ctor.BYTES_PER_ELEMENT);
}

export class SharedCopies {
  /** The kept copy of each array (at most one; a run that finds it busy gets a copy of its own). */
  private readonly kept = new WeakMap<ArrayBufferView, SharedCopy>();
  /** Kept copies no run uses, to let go of once idle long enough. */
  private readonly idle = new Set<SharedCopy>();
  private readonly byRun = new Map<number, Map<ArrayBufferView, SharedCopy>>();
  private sweeper: NodeJS.Timeout | undefined;

  /** The copy that stands for `view` in run `runId`: the run's own, a refreshed kept one, or a new one. */
  acquire(runId: number, view: ArrayBufferView): ArrayBufferView {
    let used = this.byRun.get(runId);
    if (!used) {
      used = new Map();
      this.byRun.set(runId, used);
    }
    const inRun = used.get(view);
    if (inRun) return inRun.copy;
    let entry = this.kept.get(view);
    if (entry && entry.runs.size === 0 && entry.copy.byteLength === view.byteLength) {
      // No run reads it now: the array's current contents go into the same pages.
      new Uint8Array(entry.copy.buffer, 0, view.byteLength).set(bytesOf(view));
      this.idle.delete(entry);
    } else {
      const busy = entry !== undefined && entry.copy.byteLength === view.byteLength;
      entry = { copy: copyToShared(view), source: new WeakRef(view), runs: new Set(), idleSince: 0 };
      // A run reading the kept copy at this moment must keep its bytes: this one is the run's alone.
      if (!busy) this.kept.set(view, entry);
    }
    entry.runs.add(runId);
    used.set(view, entry);
    return entry.copy;
  }

  /** The run is over: its copies become idle (kept ones), or garbage (its own). */
  release(runId: number): void {
    const used = this.byRun.get(runId);
    if (!used) return;
    this.byRun.delete(runId);
    const now = performance.now();
    for (const [view, entry] of used) {
      entry.runs.delete(runId);
      if (entry.runs.size === 0 && this.kept.get(view) === entry) {
        entry.idleSince = now;
        this.idle.add(entry);
      }
    }
    if (this.idle.size > 0 && !this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), KEEP_IDLE_MS / 2);
      this.sweeper.unref();
    }
  }

  /** Lets go of copies idle for `KEEP_IDLE_MS` or whose array is gone. */
  sweep(now = performance.now()): void {
    for (const entry of this.idle) {
      const view = entry.source.deref();
      if (view && now - entry.idleSince < KEEP_IDLE_MS) continue;
      this.idle.delete(entry);
      if (view && this.kept.get(view) === entry) this.kept.delete(view);
    }
    if (this.idle.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** For tests: how many copies are kept idle now. */
  get idleCount(): number {
    return this.idle.size;
  }
}
