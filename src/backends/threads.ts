import { Worker, type WorkerOptions } from 'node:worker_threads';
import { CANCEL_TABLE_SIZE, cancelSlot, type FromWorker, type WorkerInit } from '../wire/protocol.ts';
import { SharedCopies } from './big-arrays/shared-copies.ts';
import type { WorkerEvents, WorkerHandle, WorkerPool } from './pool.ts';
import { WorkerBackend } from './worker-backend.ts';
import {
  inheritableExecArgv,
  runningFromSource,
  tsxDirectory,
  withoutTsxLoader,
  workerEntryUrl,
} from './worker-launch.ts';

/**
 * The run-cancellation table, shared by every thread worker of the process: cancelling a run is one
 * atomic store that workers read between tasks, even in the middle of a batch.
 */
const control = new SharedArrayBuffer(CANCEL_TABLE_SIZE * Int32Array.BYTES_PER_ELEMENT);
const controlView = new Int32Array(control);

/** Worker threads started and not yet exited: a diagnostic, which the Ctrl-C test reads on the way out. */
let liveThreads = 0;

/** How many worker threads of this program have not exited yet. */
export function liveWorkerThreadCount(): number {
  return liveThreads;
}

/**
 * The flags a worker thread starts with: the caller's, less tsx's loader (see `withoutTsxLoader`);
 * `undefined` (inherit them all) when there is nothing to take out. Worked out on the first start.
 */
let threadExecArgv: string[] | undefined | null = null;

/**
 * A worker given `execArgv` refuses the flags that only a process can have (`--expose-gc`,
 * `--max-old-space-size`); they apply to every thread anyway, so they are left out, as Node names them.
 */
function newWorker(target: string | URL, options: WorkerOptions): Worker {
  if (threadExecArgv === null) {
    // Less what names the main program (-e, --input-type: see inheritableExecArgv) and tsx's loader.
    const filtered = withoutTsxLoader(inheritableExecArgv());
    threadExecArgv = filtered.length === process.execArgv.length ? undefined : filtered;
  }
  if (!threadExecArgv) return new Worker(target, options);
  try {
    return new Worker(target, { ...options, execArgv: threadExecArgv });
  } catch (error) {
    if (!isInvalidExecArgv(error)) throw error;
    threadExecArgv = withoutFlags(threadExecArgv, (error as Error).message);
  }
  try {
    return new Worker(target, { ...options, execArgv: threadExecArgv });
  } catch (error) {
    if (!isInvalidExecArgv(error)) throw error;
    // Not the message we know: inherit everything, tsx included, as before.
    threadExecArgv = undefined;
    return new Worker(target, options);
  }
}

function isInvalidExecArgv(error: unknown): boolean {
  return (error as { code?: string }).code === 'ERR_WORKER_INVALID_EXEC_ARGV';
}

/** `argv` less the flags that Node's message names (`...invalid execArgv flags: --expose-gc, --stack-size=1`). */
function withoutFlags(argv: string[], message: string): string[] {
  const named = new Set((message.split(': ')[1] ?? '').split(',').map((flag) => flag.trim()));
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!named.has(arg)) {
      kept.push(arg);
      continue;
    }
    // `--flag value`: the value goes with its flag.
    const next = argv[i + 1];
    if (!arg.includes('=') && next !== undefined && !next.startsWith('-')) i++;
  }
  return kept;
}

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
    worker = newWorker(bootstrap, { eval: true, workerData: init, resourceLimits });
  } else {
    worker = newWorker(entry, { workerData: init, resourceLimits });
  }
  liveThreads++;
  let failure: Error | undefined;
  worker.on('message', (message: FromWorker) => events.message(message));
  worker.on('error', (error: unknown) => {
    // A rejection with a string or an object is re-thrown as it is (thread-entry.ts).
    failure = error instanceof Error ? error : new Error(String(error));
  });
  worker.on('exit', (code) => {
    liveThreads--;
    events.exit(code, null, failure);
  });
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
    release: (runId: number) => sharedCopies.release(runId),
  };

  protected readonly workerKind = 'worker thread';

  protected spawnWorker(events: WorkerEvents): WorkerHandle {
    return startThread(events, this.maxWorkerMemoryMb);
  }

  protected cancelInWorkers(pool: WorkerPool, runId: number): void {
    Atomics.store(controlView, cancelSlot(runId), runId);
    // The table stops tasks between them; the message aborts the running ones' taskContext().signal.
    pool.broadcast({ t: 'cancel', run: runId });
  }
}
