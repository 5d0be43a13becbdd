/**
 * `joblib-ts worker --redis URL --root DIR [--concurrency N] [--backend processes|threads] [--secret-file F]`: the worker
 * of the Redis backend, run on each machine. Only parses the arguments: the worker itself (and what
 * SIGTERM/SIGINT do) lives in backends/redis/run-worker.ts.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readSecretFile, SECRET_ENV } from '../backends/redis/secret.ts';
import type { RedisWorkerOptions } from '../backends/redis/worker.ts';
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
  secretFile?: string;
}

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}

/** The parsed flags as the worker's options: flag names are the CLI's, option names the library's. */
function toWorkerOptions(options: WorkerCommandOptions): Omit<RedisWorkerOptions, 'log'> {
  const workerOptions: Omit<RedisWorkerOptions, 'log'> = { root: options.root, backend: options.backend };
  const connection = options.redis ?? process.env.REDIS_URL;
  if (connection) workerOptions.connection = connection;
  if (options.concurrency !== undefined) workerOptions.concurrency = options.concurrency;
  if (options.queue !== undefined) workerOptions.queue = options.queue;
  if (options.prefix !== undefined) workerOptions.prefix = options.prefix;
  if (options.prefetch !== undefined) workerOptions.prefetch = options.prefetch;
  if (options.lockMs !== undefined) workerOptions.lockMs = options.lockMs;
  if (options.stalledMs !== undefined) workerOptions.stalledIntervalMs = options.stalledMs;
  if (options.secretFile !== undefined) workerOptions.secret = readSecretFile(options.secretFile);
  return workerOptions;
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
    .option(
      '--secret-file <file>',
      `file holding the secret shared with callers: functions sent by value (closures, functions of an entry file, a REPL, a notebook) run only when signed with it (default: $${SECRET_ENV}; without one they are refused)`,
    )
    .option('-q, --quiet', 'no progress lines on stderr')
    .action(async (options: WorkerCommandOptions) => {
      // Loaded here: the worker needs the 'redis' extra, and the command's --help must not.
      const { runWorker } = await importExtra('redis', () => import('../backends/redis/run-worker.ts'));
      await runWorker(toWorkerOptions(options), { quiet: options.quiet === true });
      // Stopped (perhaps by force, with Redis gone): leave even if a library left a handle open.
      process.exit();
    });
}
