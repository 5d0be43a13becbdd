/**
 * Runs one Redis worker for the life of its process (what `joblib-ts worker` does once its arguments are
 * parsed). SIGTERM or SIGINT: finish the running batches, then return; a second signal puts them back in
 * the queue for another worker and returns at once.
 */
import { RedisWorker, type RedisWorkerOptions } from './worker.ts';

export interface RunWorkerIo {
  /** Where the progress lines go. Default: process.stderr. */
  stderr?: NodeJS.WritableStream;
  /** No progress lines at all. */
  quiet?: boolean;
  /** Aborting it acts as a first signal (for programs that run a worker in-process). */
  stopSignal?: AbortSignal;
}

/** Runs a worker until SIGTERM/SIGINT (or `stopSignal` aborts): resolves once it has stopped cleanly. */
export async function runWorker(
  options: Omit<RedisWorkerOptions, 'log'>,
  io: RunWorkerIo = {},
): Promise<void> {
  const stderr = io.stderr ?? process.stderr;
  const log = io.quiet ? undefined : (line: string) => stderr.write(`${line}\n`);
  const workerOptions: RedisWorkerOptions = { ...options, log };
  // Signals are handled from the start: one during startup stops the worker as soon as it is up.
  let signals = 0;
  let worker: RedisWorker | undefined;
  let requested: 'finish' | 'return' | undefined;
  let wake: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const onSignal = (signal: string) => {
    signals++;
    requested = signals === 1 ? 'finish' : 'return';
    if (signals === 1) {
      log?.(
        `joblib-ts worker: ${signal}: finishing ${worker?.activeCount ?? 0} running batch(es); send it again to put them back in the queue and exit now.`,
      );
    } else {
      log?.(`joblib-ts worker: ${signal} again: returning running batches to the queue.`);
    }
    if (worker) void worker.stop(requested === 'return');
    wake();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  io.stopSignal?.addEventListener('abort', () => onSignal('abort'), { once: true });
  try {
    worker = await RedisWorker.start(workerOptions);
    if (requested) void worker.stop(requested === 'return');
    await Promise.race([worker.stopped, stopRequested.then(() => worker?.stopped)]);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  log?.('joblib-ts worker: stopped.');
}
