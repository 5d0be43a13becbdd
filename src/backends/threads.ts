import { Worker } from 'node:worker_threads';
import { CANCEL_TABLE_SIZE, cancelSlot, type FromWorker, type WorkerInit } from '../worker/protocol.ts';
import { type WorkerHandle, WorkerPool } from './pool.ts';
import { WorkerBackend } from './worker-backend.ts';
import { runningFromSource, tsxDirectory, workerEntryUrl } from './worker-entry.ts';

/**
 * The run-cancellation table, shared by every thread worker of the process: cancelling a run is one
 * atomic store that workers read between tasks, even in the middle of a batch.
 */
const control = new SharedArrayBuffer(CANCEL_TABLE_SIZE * Int32Array.BYTES_PER_ELEMENT);
const controlView = new Int32Array(control);

function startThread(events: {
  message(m: FromWorker): void;
  exit(c: number | null, s: string | null, e?: Error): void;
}): WorkerHandle {
  const init: WorkerInit = { control, tsxDirectory: tsxDirectory(), sourceMaps: process.sourceMapsEnabled };
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
    worker = new Worker(bootstrap, { eval: true, workerData: init });
  } else {
    worker = new Worker(entry, { workerData: init });
  }
  let failure: Error | undefined;
  worker.on('message', (message: FromWorker) => events.message(message));
  worker.on('error', (error) => {
    failure = error;
  });
  worker.on('exit', (code) => events.exit(code, null, failure));
  return {
    label: `thread ${worker.threadId}`,
    send: (message) => worker.postMessage(message),
    ref: () => worker.ref(),
    unref: () => worker.unref(),
    terminate: async () => {
      worker.ref();
      await worker.terminate();
    },
  };
}

/** Runs tasks on `worker_threads`: the default backend. Arguments and results travel by structured clone. */
export class ThreadsBackend extends WorkerBackend {
  readonly name = 'ThreadsBackend';
  protected readonly poolKind = 'threads';

  protected poolKey(): string {
    return String(this.concurrency);
  }

  protected createPool(): WorkerPool {
    return new WorkerPool(this.concurrency, startThread, 'worker thread');
  }

  protected cancelInWorkers(_pool: WorkerPool, runId: number): void {
    Atomics.store(controlView, cancelSlot(runId), runId);
  }
}
