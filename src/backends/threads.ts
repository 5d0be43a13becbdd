import { Worker } from 'node:worker_threads';
import { CANCEL_TABLE_SIZE, cancelSlot, type FromWorker, type WorkerInit } from '../worker/protocol.ts';
import { type WorkerEvents, type WorkerHandle, WorkerPool } from './pool.ts';
import { WorkerBackend } from './worker-backend.ts';
import { runningFromSource, tsxDirectory, workerEntryUrl } from './worker-entry.ts';

/**
 * The run-cancellation table, shared by every thread worker of the process: cancelling a run is one
 * atomic store that workers read between tasks, even in the middle of a batch.
 */
const control = new SharedArrayBuffer(CANCEL_TABLE_SIZE * Int32Array.BYTES_PER_ELEMENT);
const controlView = new Int32Array(control);

function startThread(events: WorkerEvents, maxWorkerMemoryMb: number | undefined): WorkerHandle {
  const position = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const positionView = new Int32Array(position);
  const init: WorkerInit = {
    control,
    position,
    tsxDirectory: tsxDirectory(),
    sourceMaps: process.sourceMapsEnabled,
  };
  const resourceLimits = maxWorkerMemoryMb ? { maxOldGenerationSizeMb: maxWorkerMemoryMb } : undefined;
  const entry = workerEntryUrl('thread-entry');
  let worker: Worker;
  if (runningFromSource) {
    // Our own entry is TypeScript here: register tsx in the thread, then load the entry.
    const tsx = init.tsxDirectory;
    const bootstrap = `(async () => {
      const { pathToFileURL } = await import('node:url');
      const { join } = await import('node:path');
      const tsx = ${JSON.stringify(tsx)};
      if (tsx) {
        (await import(pathToFileURL(join(tsx, 'dist/esm/api/index.mjs')).href)).register();
        (await import(pathToFileURL(join(tsx, 'dist/cjs/api/index.mjs')).href)).register();
      }
      await import(${JSON.stringify(entry.href)});
    })().catch((error) => { process.nextTick(() => { throw error; }); });`;
    worker = new Worker(bootstrap, { eval: true, workerData: init, resourceLimits });
  } else {
    worker = new Worker(entry, { workerData: init, resourceLimits });
  }
  let failure: Error | undefined;
  worker.on('message', (message: FromWorker) => events.message(message));
  worker.on('error', (error) => {
    failure = error;
  });
  worker.on('exit', (code) => events.exit(code, null, failure));
  return {
    label: `thread ${worker.threadId}`,
    send: (message, transfer) => worker.postMessage(message, transfer),
    ref: () => worker.ref(),
    unref: () => worker.unref(),
    terminate: async () => {
      worker.ref();
      await worker.terminate();
    },
    position: () => {
      const batch = Atomics.load(positionView, 0);
      return batch === 0 ? undefined : { batch, at: Atomics.load(positionView, 1) };
    },
  };
}

type TypedArrayConstructor = new (
  buffer: SharedArrayBuffer,
  byteOffset: number,
  length: number,
) => ArrayBufferView;

/** The same bytes and element type, on a SharedArrayBuffer: structured clone then shares it instead of copying. */
function copyToShared(view: ArrayBufferView): ArrayBufferView {
  const shared = new SharedArrayBuffer(view.byteLength);
  new Uint8Array(shared).set(bytesOf(view));
  if (view instanceof DataView) return new DataView(shared);
  const Ctor = view.constructor as TypedArrayConstructor & { BYTES_PER_ELEMENT: number };
  return new Ctor(shared, 0, view.byteLength / Ctor.BYTES_PER_ELEMENT);
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** A caller's array's shared copy, and the runs that use it now. */
interface SharedCopy {
  readonly copy: ArrayBufferView;
  readonly runs: Set<number>;
}

/**
 * The shared copy of each big array, kept while the caller keeps the array, for every threads backend of
 * the program. A later run with the same array writes its current bytes into the same shared memory:
 * 42 ms for 256 MB here against 106 ms for fresh memory (its pages fault in), and no new 256 MB each run
 * (worker threads collect the old copies late: ten runs on one 256 MB array grew the program to 3 GB and
 * each run took 3x longer after the third, before this).
 */
const sharedCopies = new WeakMap<ArrayBufferView, SharedCopy>();

/**
 * A typed array on shared memory, for data that tasks on the threads backend may write into and the
 * caller then reads (results without a copy back): `createSharedArray(Float64Array, 1_000_000)`.
 */
export function createSharedArray<T extends ArrayBufferView>(
  Ctor: { new (buffer: SharedArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number },
  length: number,
): T {
  return new Ctor(new SharedArrayBuffer(length * Ctor.BYTES_PER_ELEMENT), 0, length);
}

/** Runs tasks on `worker_threads`: the default backend. Arguments and results travel by structured clone. */
export class ThreadsBackend extends WorkerBackend {
  readonly name = 'ThreadsBackend';
  protected readonly poolKind = 'threads';

  /** The shared copies each run uses: an array passed to many tasks of a run is copied once. */
  private readonly runCopies = new Map<number, Map<ArrayBufferView, ArrayBufferView>>();

  /** Big typed arrays go as views of one shared copy per run (arrays already shared go as they are). */
  protected readonly bigArrays = {
    accepts: (view: ArrayBufferView) => !(view.buffer instanceof SharedArrayBuffer) && !Buffer.isBuffer(view),
    replace: (runId: number, view: ArrayBufferView) => this.sharedCopy(runId, view),
  };

  override endRun(runId: number): void {
    const used = this.runCopies.get(runId);
    this.runCopies.delete(runId);
    for (const view of used?.keys() ?? []) sharedCopies.get(view)?.runs.delete(runId);
    super.endRun(runId);
  }

  private sharedCopy(runId: number, view: ArrayBufferView): ArrayBufferView {
    let used = this.runCopies.get(runId);
    if (!used) {
      used = new Map();
      this.runCopies.set(runId, used);
    }
    const inRun = used.get(view);
    if (inRun) return inRun;
    let kept = sharedCopies.get(view);
    if (kept && kept.runs.size === 0 && kept.copy.byteLength === view.byteLength) {
      // No run reads it now: refresh it with the array's current contents, in the same pages.
      new Uint8Array(kept.copy.buffer, 0, view.byteLength).set(bytesOf(view));
    } else if (kept && kept.copy.byteLength === view.byteLength) {
      // Another run reads it at this moment: this run gets its own copy, not kept.
      kept = { copy: copyToShared(view), runs: new Set() };
    } else {
      kept = { copy: copyToShared(view), runs: new Set() };
      sharedCopies.set(view, kept);
    }
    kept.runs.add(runId);
    used.set(view, kept.copy);
    return kept.copy;
  }

  protected poolKey(): string {
    return `${this.concurrency}/${this.maxWorkerMemoryMb ?? ''}`;
  }

  protected createPool(): WorkerPool {
    return new WorkerPool(
      this.concurrency,
      (events) => startThread(events, this.maxWorkerMemoryMb),
      'worker thread',
    );
  }

  protected cancelInWorkers(_pool: WorkerPool, runId: number): void {
    Atomics.store(controlView, cancelSlot(runId), runId);
  }
}
