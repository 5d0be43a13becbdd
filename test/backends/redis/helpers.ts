/**
 * Redis test fixtures: finds the server (skipping loudly without one, failing under
 * JOBLIB_TS_REQUIRE_REDIS=1), gives each test its own queue and key prefix (`redisTest`), starts worker
 * processes that are always stopped, and deletes every key a test made, reporting the ones it leaked.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, type TestOptions, test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
// Imported for its effect too: the `redis` backend registers itself.
import type { RedisBackendOptions } from '../../../src/backends/redis/index.ts';
import '../../../src/backends/redis/index.ts';
import { Parallel, type ParallelOptions } from '../../../src/index.ts';
import { repoRoot } from '../../helpers.ts';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Resolves to undefined when Redis answers, else to the reason to skip (or throws when Redis is required). */
export async function redisSkipReason(): Promise<string | undefined> {
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (error) {
    const reason = `no Redis answers at ${REDIS_URL} (${(error as Error).message})`;
    if (process.env.JOBLIB_TS_REQUIRE_REDIS === '1') {
      throw new Error(
        `JOBLIB_TS_REQUIRE_REDIS=1 but ${reason}. Start Redis (redis-server) or set REDIS_URL.`,
      );
    }
    process.stderr.write(
      `\n\n*** SKIPPING the Redis backend tests: ${reason}. Start redis-server or set REDIS_URL to run them. ***\n\n`,
    );
    return reason;
  } finally {
    client.disconnect();
  }
}

let shared: Redis | undefined;

/**
 * One plain client for the tests' own checks: closed by the hook of the test (or suite) that made it,
 * and by every `redisTest` when it ends (a hook registered after an `await` may land on a test that
 * has already run its hooks, and the open socket would keep the file's process from exiting).
 */
export function redis(): Redis {
  if (!shared) {
    shared = new Redis(REDIS_URL);
    shared.on('error', () => {});
    after(closeRedis);
  }
  return shared;
}

/** Closes the client of `redis()`; the next call opens another. */
export function closeRedis(): void {
  shared?.disconnect();
  shared = undefined;
}

let scopes = 0;

/**
 * A queue name and key prefix no other test, suite or program uses: this process's pid, a counter, and
 * random bytes (another machine on the same Redis may have the same pid). A `joblib-ts worker` on the
 * default queue never sees these tasks, and a test never touches a queue it did not create.
 */
export function uniqueQueue(): { prefix: string; queue: string } {
  const n = ++scopes;
  const tag = `${process.pid}-${n}-${randomBytes(4).toString('hex')}`;
  return { prefix: `jt-test-${tag}`, queue: `jt-test-q-${tag}` };
}
/** A key prefix of its own (for tests that make their own queue name). */
export function uniquePrefix(): string {
  return uniqueQueue().prefix;
}

/** Keys under a prefix (SCAN, never KEYS), on the shared Redis unless another client is given. */
export async function keysWith(pattern: string, client: Redis = redis()): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

/**
 * Every key a run left that is not the queue's own (its BullMQ bookkeeping and worker registrations),
 * once the call's cleanup is done: it polls until there is none, so a leak fails by the test's timeout.
 */
export async function callKeysLeft(
  prefix: string,
  queue: string,
  client: Redis = redis(),
): Promise<string[]> {
  const left = async () =>
    (await keysWith(`${prefix}:${queue}:*`, client)).filter((key) => isCallKey(prefix, queue, key));
  let last = await left();
  while (last.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await left();
  }
  return last;
}

/** Whether a key belongs to a call (its own keys and its jobs), not to the queue or the worker registry. */
export function isCallKey(prefix: string, queue: string, key: string): boolean {
  const rest = key.slice(`${prefix}:${queue}:`.length);
  // A call's own keys (jt:<call>:...) and its jobs (jt-<call>-<seq>...); not the worker registry.
  return (rest.startsWith('jt:') && !/^jt:(workers|w:|cancel)/.test(rest)) || rest.startsWith('jt-');
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartWorkersOptions {
  prefix: string;
  queue: string;
  count: number;
  concurrency?: number;
  root?: string;
  extraArgs?: string[];
  /** Wait until they are registered in Redis (default true). */
  waitRegistered?: boolean;
  /** The Redis they serve (default REDIS_URL). */
  url?: string;
}

const started = new Set<WorkerProcess>();
// Whatever happens to the test file, no worker outlives it.
process.on('exit', () => {
  for (const worker of started) worker.child.kill('SIGKILL');
});

const workerMain = join(repoRoot, 'src/cli/worker-main.ts');

/** Starts `count` worker processes (the worker command); `stopAllWorkers()` (or the file's exit) ends them. */
export async function startWorkers(options: StartWorkersOptions): Promise<WorkerProcess[]> {
  const workers: WorkerProcess[] = [];
  const registry = `${options.prefix}:${options.queue}:jt:workers`;
  const url = options.url ?? REDIS_URL;
  const check = options.url ? new Redis(options.url) : redis();
  check.on('error', () => {});
  try {
    await startWorkersOn(check, url, registry, options, workers);
  } finally {
    if (check !== redis()) check.disconnect();
  }
  return workers;
}

async function startWorkersOn(
  check: Redis,
  url: string,
  registry: string,
  options: StartWorkersOptions,
  workers: WorkerProcess[],
): Promise<void> {
  const before = new Set(await check.smembers(registry));
  for (let i = 0; i < options.count; i++) {
    const args = [
      '--import',
      'tsx',
      workerMain,
      '--redis',
      url,
      '--root',
      options.root ?? repoRoot,
      '--queue',
      options.queue,
      '--prefix',
      options.prefix,
      '--concurrency',
      String(options.concurrency ?? 1),
      ...(options.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d) => {
      output += d;
    });
    child.stderr?.on('data', (d) => {
      output += d;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    const worker: WorkerProcess = { child, pid: child.pid as number, output: () => output, exited };
    workers.push(worker);
    started.add(worker);
    worker.exited.then(() => started.delete(worker));
  }
  if (options.waitRegistered !== false) {
    // Until they have registered, or one of them has exited (then it never will): no deadline.
    let registered = 0;
    for (;;) {
      const ids = await check.smembers(registry);
      registered = ids.filter((id) => !before.has(id)).length;
      if (registered >= options.count || workers.some((w) => w.child.exitCode !== null)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (registered < options.count) {
      throw new Error(`workers did not register: ${workers.map((w) => w.output()).join('\n')}`);
    }
  }
}

/** SIGTERM (graceful), then SIGKILL after a few seconds. */
/** Stops (SIGTERM, then SIGKILL) every worker the file started that is still running. */
export async function stopAllWorkers(): Promise<void> {
  await Promise.all([...started].map(stopWorker));
}

export async function stopWorker(
  worker: WorkerProcess,
): Promise<{ code: number | null; signal: string | null }> {
  const { child } = worker;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    const result = await worker.exited;
    clearTimeout(timer);
    return result;
  }
  return worker.exited;
}

/** Removes the queue's BullMQ keys (meta, id, events...): what is left after that is a leak. */
export async function removeQueue(prefix: string, queue: string): Promise<void> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const q = new Queue(queue, { connection, prefix });
  await q.obliterate({ force: true });
  await q.close();
  connection.disconnect();
}

/**
 * Worker processes shared by the `redisTest`s of one suite (each starting processes of its own, with
 * their local pools, costs seconds of CPU on a small machine): one queue and prefix of the suite's own,
 * workers started on first use. Each test still checks that its calls left no key; when the suite ends
 * the workers are stopped, the queue removed, and a key left under the prefix fails the suite. For tests
 * that do not kill, stop or reconfigure these workers (start workers of the test's own for that).
 * Call it in a `describe` body: its cleanup is that suite's `after` hook.
 */
export interface SharedWorkers {
  readonly prefix: string;
  readonly queue: string;
  /** The suite's workers: started (and registered) on the first call, the same processes after that. */
  workers(): Promise<WorkerProcess[]>;
}

export function sharedWorkers(options: Omit<StartWorkersOptions, 'prefix' | 'queue'>): SharedWorkers {
  const { prefix, queue } = uniqueQueue();
  let started: Promise<WorkerProcess[]> | undefined;
  after(async () => {
    const workers = started ? await started.catch(() => []) : [];
    await Promise.all(workers.map(stopWorker));
    await removeQueue(prefix, queue);
    const client = new Redis(REDIS_URL);
    client.on('error', () => {});
    try {
      const leaked = await keysWith(`${prefix}:*`, client);
      if (leaked.length > 0) await client.del(...leaked);
      assert.deepEqual(leaked, [], `keys left under the suite's prefix ${prefix}`);
    } finally {
      client.disconnect();
    }
  });
  return {
    prefix,
    queue,
    workers: () => {
      started ??= startWorkers({ ...options, prefix, queue });
      return started;
    },
  };
}

/** One test's own queue and prefix, with the workers and `Parallel`s it started there. */
export interface RedisScope {
  readonly prefix: string;
  readonly queue: string;
  /** Backend options on this scope's queue and prefix (`root`: the repository unless given). */
  backendOptions(extra?: RedisBackendOptions): RedisBackendOptions;
  /** A `Parallel` on the `redis` backend of this scope, closed when the test ends. */
  parallel(options?: Omit<ParallelOptions<'array'>, 'backend'>, extra?: RedisBackendOptions): Parallel;
  /** Worker processes serving this scope's queue, stopped when the test ends. */
  startWorkers(options: Omit<StartWorkersOptions, 'prefix' | 'queue'>): Promise<WorkerProcess[]>;
  /** The suite's shared workers (`redisTest`'s `shared` option), on this scope's queue. */
  sharedWorkers(): Promise<WorkerProcess[]>;
}

export interface RedisTestOptions extends TestOptions {
  /**
   * Run on the queue and prefix of these suite-wide workers: the test's own workers and `Parallel`s
   * are still ended with it, and the keys of its calls must be gone; the queue, and the check that no
   * key at all is left, are the suite's.
   */
  shared?: SharedWorkers;
}

/**
 * A Redis test on its own queue and key prefix. When it ends, however it ends: its `Parallel`s are
 * closed, its workers stopped, its queue removed, and every key under its prefix deleted; a test that
 * passed also fails if it left a key behind (a leak of the backend or of the worker). With `shared`,
 * on the suite's queue and workers instead: a test that passed fails if a key of a call is left (polled
 * until none, so a leak fails by the test's timeout), and the suite checks every key when it ends.
 */
export function redisTest(
  name: string,
  body: (scope: RedisScope) => Promise<void>,
  { shared, ...options }: RedisTestOptions = {},
): void {
  test(name, { timeout: 120_000, ...options }, async () => {
    const { prefix, queue } = shared ?? uniqueQueue();
    const parallels: Parallel[] = [];
    const workers: WorkerProcess[] = [];
    const backendOptions = (extra: RedisBackendOptions = {}): RedisBackendOptions => ({
      connection: REDIS_URL,
      root: repoRoot,
      ...extra,
      prefix,
      queue,
    });
    const scope: RedisScope = {
      prefix,
      queue,
      backendOptions,
      parallel: (parallelOptions = {}, extra = {}) => {
        const p = new Parallel({
          ...parallelOptions,
          backend: 'redis',
          backendOptions: backendOptions(extra) as Readonly<Record<string, unknown>>,
        });
        parallels.push(p);
        return p;
      },
      startWorkers: async (workerOptions) => {
        const mine = await startWorkers({ ...workerOptions, prefix, queue });
        workers.push(...mine);
        return mine;
      },
      sharedWorkers: () => {
        if (!shared) throw new Error(`redisTest '${name}' has no shared workers`);
        return shared.workers();
      },
    };
    let passed = false;
    try {
      await body(scope);
      passed = true;
    } finally {
      await Promise.allSettled(parallels.map((p) => p.close()));
      await Promise.all(workers.map(stopWorker));
      try {
        if (shared) {
          if (passed) assert.deepEqual(await callKeysLeft(prefix, queue), [], 'the calls left keys in Redis');
        } else {
          await removeQueue(prefix, queue);
          const leaked = await keysWith(`${prefix}:*`);
          if (leaked.length > 0) await redis().del(...leaked);
          if (passed) assert.deepEqual(leaked, [], `keys left under the test's prefix ${prefix}`);
        }
      } finally {
        closeRedis();
      }
    }
  });
}
