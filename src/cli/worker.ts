/**
 * `joblib-ts worker --redis URL --root DIR [--concurrency N] [--backend processes|threads]`: the worker
 * of the Redis backend, run on each machine. Pulls batches from Redis and runs them on a local pool.
 * SIGTERM or SIGINT: finish the running batches, then exit; a second signal puts them back in the
 * queue for another worker and exits at once.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { RedisWorker, RedisWorkerOptions } from '../backends/redis/worker.ts';
import { importExtra } from '../extras.ts';

export interface WorkerCommandOptions {
  redis?: string;
  root: string;
  concurrency?: number;
  backend: 'processes' | 'threads';
  queue?: string;
  prefix?: string;
  prefetch?: number;
  lockMs?: number;
  stalledMs?: number;
  quiet?: boolean;
}

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}

/**
 * Runs a worker until SIGTERM/SIGINT (or `stopSignal` aborts): resolves once it has stopped cleanly.
 * `io.stderr` gets the progress lines.
 */
export async function runWorker(
  options: WorkerCommandOptions,
  io: { stderr?: NodeJS.WritableStream; stopSignal?: AbortSignal } = {},
): Promise<void> {
  const stderr = io.stderr ?? process.stderr;
  const log = options.quiet ? undefined : (line: string) => stderr.write(`${line}\n`);
  const workerOptions: RedisWorkerOptions = {
    root: options.root,
    backend: options.backend,
    log,
  };
  const connection = options.redis ?? process.env.REDIS_URL;
  if (connection) workerOptions.connection = connection;
  if (options.concurrency !== undefined) workerOptions.concurrency = options.concurrency;
  if (options.queue !== undefined) workerOptions.queue = options.queue;
  if (options.prefix !== undefined) workerOptions.prefix = options.prefix;
  if (options.prefetch !== undefined) workerOptions.prefetch = options.prefetch;
  if (options.lockMs !== undefined) workerOptions.lockMs = options.lockMs;
  if (options.stalledMs !== undefined) workerOptions.stalledIntervalMs = options.stalledMs;
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
    const { RedisWorker } = await importExtra('redis', () => import('../backends/redis/worker.ts'));
    worker = await RedisWorker.start(workerOptions);
    if (requested) void worker.stop(requested === 'return');
    await Promise.race([worker.stopped, stopRequested.then(() => worker?.stopped)]);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  log?.('joblib-ts worker: stopped.');
}

export function workerCommand(): Command {
  return new Command('worker')
    .description(
      'Run tasks of `backend: "redis"` Parallel calls: pull batches from Redis, run them on a local pool of processes.',
    )
    .option(
      '--redis <url>',
      'Redis URL (redis:// or rediss:// for TLS); default: $REDIS_URL, else redis://127.0.0.1:6379',
    )
    .requiredOption(
      '--root <dir>',
      'project root: task modules are resolved under it, nothing outside it is imported',
    )
    .option('--concurrency <n>', 'local workers (default: the CPU count)', positiveInteger('--concurrency'))
    .addOption(
      new Option('--backend <kind>', 'where tasks run locally')
        .choices(['processes', 'threads'])
        .default('processes'),
    )
    .option('--queue <name>', 'queue name (default joblib-ts)')
    .option('--prefix <prefix>', 'Redis key prefix (default joblib-ts)')
    .option(
      '--prefetch <n>',
      'jobs held beyond --concurrency (default: --concurrency)',
      positiveInteger('--prefetch'),
    )
    .addOption(
      new Option('--lock-ms <ms>', 'job lock duration').argParser(positiveInteger('--lock-ms')).hideHelp(),
    )
    .addOption(
      new Option('--stalled-ms <ms>', 'stalled-job check interval')
        .argParser(positiveInteger('--stalled-ms'))
        .hideHelp(),
    )
    .option('-q, --quiet', 'no progress lines on stderr')
    .action(async (options: WorkerCommandOptions) => {
      await runWorker(options);
    });
}
