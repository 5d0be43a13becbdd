import { Worker } from 'node:worker_threads';
import { CANCEL_TABLE_SIZE, cancelSlot, type FromWorker, type WorkerInit } from '../wire/protocol.ts';
import { SharedCopies } from './big-arrays/shared-copies.ts';
import { type WorkerEvents, type WorkerHandle, WorkerPool } from './pool.ts';
import { WorkerBackend } from './worker-backend.ts';
import { inheritableExecArgv, runningFromSource, tsxDirectory, workerEntryUrl } from './worker-launch.ts';

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
  const execArgv = inheritableExecArgv();
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
    worker = new Worker(bootstrap, { eval: true, workerData: init, resourceLimits, execArgv });
  } else {
    worker = new Worker(entry, { workerData: init, resourceLimits, execArgv });
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

/** Shared copies of big arguments, for every threads backend of the program. */
const sharedCopies = new SharedCopies();

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

  /** Big typed arrays go as views of one shared copy per run (arrays already shared go as they are). */
  protected readonly bigArrays = {
    accepts: (view: ArrayBufferView) => !(view.buffer instanceof SharedArrayBuffer) && !Buffer.isBuffer(view),
    replace: (runId: number, view: ArrayBufferView) => sharedCopies.acquire(runId, view),
  };

  override endRun(runId: number): void {
    sharedCopies.release(runId);
    super.endRun(runId);
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
