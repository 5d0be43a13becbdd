/**
 * The caller's lease on its calls: each call's marker key lives `leaseMs` unless renewed, and workers
 * stop the tasks of a call whose marker is gone. The renewal runs in a worker thread of its own with its
 * own Redis connection, so a caller whose event loop is busy (a `for await` body computing for minutes)
 * keeps its calls, while a dead caller's lease runs out. One thread per connection and process, shared
 * by every backend; it never holds the program (unref'd) and ends once it has held nothing for a while.
 *
 * The thread only ever extends (PEXPIRE) a marker, never creates one: a marker lost with a Redis that
 * restarted empty stays lost, which is how the call learns that its state is gone.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { RedisConnection } from './options.ts';

/** The thread's program: plain CommonJS, so it needs no TypeScript loader. */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const m = require(workerData.ioredis);
const Redis = m.Redis || m.default || m;
const { connection } = workerData;
const own = { connectionName: 'joblib-ts-lease', maxRetriesPerRequest: 1, enableOfflineQueue: false,
  commandTimeout: 2000, retryStrategy: (times) => Math.min(100 * times, 1000) };
const client = typeof connection === 'string' ? new Redis(connection, own)
  : connection.url ? new Redis(connection.url, { ...connection, url: undefined, ...own })
  : new Redis({ ...connection, ...own });
client.on('error', () => {});
const held = new Map();
let renewing = false;
async function renew(all) {
  if (renewing || client.status !== 'ready') return;
  const now = Date.now();
  const due = [...held].filter(([, h]) => all || now >= h.next);
  if (due.length === 0) return;
  renewing = true;
  try {
    const pipeline = client.pipeline();
    for (const [key, h] of due) pipeline.pexpire(key, h.ttl);
    const replies = await pipeline.exec();
    due.forEach(([key, h], i) => {
      if (replies && !replies[i][0]) h.next = now + h.every;
    });
  } catch {}
  renewing = false;
}
client.on('ready', () => void renew(true));
setInterval(() => void renew(false), 100);
parentPort.on('message', (m) => {
  if (m.op === 'hold') held.set(m.key, { ttl: m.ttl, every: Math.max(50, Math.min(5000, Math.floor(m.ttl / 4))), next: 0 });
  else held.delete(m.key);
});
`;

/** How long a thread with nothing to hold stays up, so back-to-back runs do not start one each. */
const LINGER_MS = 10_000;

class LeaseThread {
  private thread: Worker | undefined;
  /** Marker keys held, with their lifetime. */
  private readonly held = new Map<string, number>();
  private linger: NodeJS.Timeout | undefined;

  constructor(private readonly connection: RedisConnection) {}

  /** Renews `key` to `ttlMs` from now on, about four times per lifetime (at most every 5 s). */
  hold(key: string, ttlMs: number): void {
    if (this.linger) clearTimeout(this.linger);
    this.linger = undefined;
    this.held.set(key, ttlMs);
    if (this.thread) {
      this.thread.postMessage({ op: 'hold', key, ttl: ttlMs });
      return;
    }
    // A new thread (the first, or after one died) takes over everything held.
    this.thread = this.start();
    for (const [k, ttl] of this.held) this.thread?.postMessage({ op: 'hold', key: k, ttl });
  }

  release(key: string): void {
    if (!this.held.delete(key)) return;
    this.thread?.postMessage({ op: 'release', key });
    if (this.held.size === 0 && this.thread && !this.linger) {
      this.linger = setTimeout(() => {
        this.linger = undefined;
        const thread = this.thread;
        this.thread = undefined;
        void thread?.terminate();
      }, LINGER_MS);
      this.linger.unref();
    }
  }

  /**
   * The thread, or undefined where it cannot run (ioredis options that cannot be copied to a thread,
   * such as functions): the call's own periodic check then renews its marker, as long as its loop is free.
   */
  private start(): Worker | undefined {
    let connection: RedisConnection;
    try {
      connection = structuredClone(this.connection);
    } catch {
      return undefined;
    }
    try {
      const ioredis = createRequire(import.meta.url).resolve('ioredis');
      const thread = new Worker(THREAD_SOURCE, {
        eval: true,
        workerData: { connection, ioredis },
        execArgv: [],
      });
      thread.on('error', () => {
        if (this.thread === thread) this.thread = undefined;
      });
      thread.on('exit', () => {
        if (this.thread === thread) this.thread = undefined;
      });
      thread.unref();
      return thread;
    } catch {
      return undefined;
    }
  }
}

const threads = new Map<string, LeaseThread>();

/** The lease thread of a connection, shared in this process by every backend with the same connection. */
export function leaseFor(connection: RedisConnection): LeaseThread {
  let key: string;
  try {
    key = typeof connection === 'string' ? connection : `json:${JSON.stringify(connection)}`;
  } catch {
    return new LeaseThread(connection);
  }
  let lease = threads.get(key);
  if (!lease) {
    lease = new LeaseThread(connection);
    threads.set(key, lease);
  }
  return lease;
}
