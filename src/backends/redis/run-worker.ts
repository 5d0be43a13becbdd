/**
 * Runs one Redis worker for the life of its process (what `joblib-ts worker` does once its arguments are
 * parsed). SIGTERM or SIGINT: finish the running batches, then return; a second signal puts them back in
 * the queue for another worker and returns within a few seconds, always: when that cannot be done in
 * time (Redis unreachable, a batch that does not stop), the worker is stopped by force.
 */
import { settlesWithin } from './reachability.ts';
import { RedisWorker, type RedisWorkerOptions } from './worker.ts';

export interface RunWorkerIo {
  /** Where the progress lines go. Default: process.stderr. */
  stderr?: NodeJS.WritableStream;
  /** No progress lines at all. */
  quiet?: boolean;
  /** Aborting it acts as a first signal (for programs that run a worker in-process). */
  stopSignal?: AbortSignal;
}

/** After a second signal, how long the graceful return of the running batches may take. */
const FORCE_AFTER_MS = 2000;
/** How long a forced stop may take before `runWorker` returns regardless. */
const KILL_MS = 1500;

/** Runs a worker until SIGTERM/SIGINT (or `stopSignal` aborts): resolves once it has stopped. */
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
  let forced = false;
  let forceTimer: NodeJS.Timeout | undefined;
  let markForced: () => void = () => {};
  const forcedStop = new Promise<void>((resolve) => {
    markForced = resolve;
  });
  const force = () => {
    forced = true;
    log?.('joblib-ts worker: stopping now.');
    const killing = worker ? worker.kill() : Promise.resolve();
    void settlesWithin(killing, KILL_MS).then(markForced);
  };
  const onSignal = (signal: string) => {
    signals++;
    requested = signals === 1 ? 'finish' : 'return';
    if (signals === 1) {
      log?.(
        `joblib-ts worker: ${signal}: finishing ${worker?.activeCount ?? 0} running batch(es); send it again to put them back in the queue and exit now.`,
      );
    } else {
      log?.(`joblib-ts worker: ${signal} again: returning running batches to the queue.`);
      // Whatever Redis does, the worker is gone a few seconds after the second signal.
      forceTimer ??= setTimeout(force, FORCE_AFTER_MS);
    }
    if (worker) void worker.stop(requested === 'return');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  io.stopSignal?.addEventListener('abort', () => onSignal('abort'), { once: true });
  try {
    const starting = RedisWorker.start(workerOptions);
    starting.then(
      (started) => {
        worker = started;
        if (forced) void started.kill();
        else if (requested) void started.stop(requested === 'return');
      },
      () => {},
    );
    await Promise.race([starting.then((started) => started.stopped), forcedStop]);
  } finally {
    if (forceTimer) clearTimeout(forceTimer);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  log?.('joblib-ts worker: stopped.');
}
