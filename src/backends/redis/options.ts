/**
 * Options of the Redis backend and its workers, their defaults, the Redis key layout, and the
 * helpers that make connections and keep credentials out of every message.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { InvalidArgumentError } from '../../errors.ts';
import { checkKnownOptions } from '../../known-options.ts';
import { resolveSecret, type Secret } from './secret.ts';

/** A Redis URL (`redis://`, `rediss://` for TLS) or ioredis options; `url` plus options combines both. */
export type RedisConnection = string | (RedisOptions & { url?: string });

/** What both sides must agree on: where the queue lives. */
export interface RedisQueueOptions {
  /** Default: `REDIS_URL`, else `redis://127.0.0.1:6379`. */
  connection?: RedisConnection;
  /** BullMQ queue name (no `:`). Default `joblib-ts`. */
  queue?: string;
  /** Prefix of every Redis key (BullMQ's `prefix`). Default `joblib-ts`. Use `{joblib-ts}` on Redis Cluster. */
  prefix?: string;
}

export interface RedisBackendOptions extends RedisQueueOptions {
  /** Project root: task modules travel as paths relative to it. Default `process.cwd()`. */
  root?: string;
  /** How long `run()` waits for a live worker before it fails with how to start one. Default 15 000 ms. */
  workerWaitMs?: number;
  /** Arguments whose encoded size is above this many bytes are stored once by content hash. Default 1 MB. */
  largeArgumentBytes?: number;
  /** Lifetime of a call's keys if the caller dies without cleaning up. Default 3 600 000 ms (1 h). */
  keyTtlMs?: number;
  /** How often a call checks its jobs' state in Redis (and its workers' heartbeats). Default 2 000 ms. */
  reconcileMs?: number;
  /** How long a call rides out an unreachable Redis before it fails. Default 30 000 ms. */
  outageMs?: number;
  /**
   * Lifetime of a call's lease (its marker key), renewed from a thread of its own: workers stop the call's
   * tasks this long after its caller died. Default `outageMs` + 15 000 ms (45 s).
   */
  leaseMs?: number;
  /**
   * The secret shared with the workers (`joblib-ts worker --secret-file F`, or both sides'
   * `JOBLIB_TS_SECRET`, the default): with it, functions that no worker can import (closures, inline
   * arrows, functions of the entry file, a REPL or a notebook) travel by value, their code signed with
   * it (HMAC-SHA256); without it, only functions exported by modules under the root can run. At least
   * 16 characters.
   */
  secret?: string;
}

const BACKEND_OPTION_KEYS: Record<keyof RedisBackendOptions, true> = {
  connection: true,
  queue: true,
  prefix: true,
  root: true,
  workerWaitMs: true,
  largeArgumentBytes: true,
  keyTtlMs: true,
  reconcileMs: true,
  outageMs: true,
  leaseMs: true,
  secret: true,
};
const BACKEND_OPTION_NAMES: readonly string[] = Object.keys(BACKEND_OPTION_KEYS);

export interface ResolvedBackendOptions {
  connection: RedisConnection;
  queue: string;
  prefix: string;
  root: string;
  workerWaitMs: number;
  largeArgumentBytes: number;
  keyTtlMs: number;
  reconcileMs: number;
  outageMs: number;
  leaseMs: number;
  /** Never shown: a `Secret` prints as `[secret]`. */
  secret: Secret | undefined;
}

export const DEFAULT_QUEUE = 'joblib-ts';
export const DEFAULT_PREFIX = 'joblib-ts';
export const DEFAULT_URL = 'redis://127.0.0.1:6379';

/**
 * Worker lock and stall settings. User code runs in child processes, never in the process that renews
 * the locks, so a short lock is safe: a SIGKILLed worker's jobs are back in the queue within
 * lockDuration + 2 × stalledInterval (8 s) instead of BullMQ's 30 to 60 s.
 */
export const DEFAULT_LOCK_MS = 4000;
export const DEFAULT_STALLED_INTERVAL_MS = 2000;
export const DEFAULT_MAX_STALLED_COUNT = 3;
/** Workers refresh their registration this often; it expires after three missed beats. */
export const HEARTBEAT_MS = 2000;

function positive(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(
      `redis backend option ${name} must be a positive number; got ${String(value)}.`,
    );
  }
  return value;
}

function checkName(what: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0 || (what === 'queue' && value.includes(':'))) {
    throw new InvalidArgumentError(
      `redis backend option ${what} must be a non-empty string${what === 'queue' ? ' without ":"' : ''}; got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

export function defaultConnection(): RedisConnection {
  return process.env.REDIS_URL || DEFAULT_URL;
}

export function resolveQueueOptions(options: RedisQueueOptions): Required<RedisQueueOptions> {
  const connection = options.connection ?? defaultConnection();
  if (typeof connection !== 'string' && (connection === null || typeof connection !== 'object')) {
    throw new InvalidArgumentError(
      'redis backend option connection must be a redis:// or rediss:// URL or ioredis options.',
    );
  }
  return {
    connection,
    queue: checkName('queue', options.queue, DEFAULT_QUEUE),
    prefix: checkName('prefix', options.prefix, DEFAULT_PREFIX),
  };
}

export function resolveBackendOptions(options: RedisBackendOptions): ResolvedBackendOptions {
  checkKnownOptions(options, {
    where: "backendOptions of backend 'redis'",
    known: BACKEND_OPTION_NAMES,
    elsewhere: {
      url: 'give the Redis URL as connection: { connection: "redis://host:6379" }',
      host: 'give the host inside connection: { connection: { host, port } }',
      port: 'give the port inside connection: { connection: { host, port } }',
    },
    error: (message) => new InvalidArgumentError(message),
  });
  const outageMs = positive('outageMs', options.outageMs, 30_000);
  return {
    ...resolveQueueOptions(options),
    root: options.root ?? process.cwd(),
    workerWaitMs: positive('workerWaitMs', options.workerWaitMs, 15_000),
    largeArgumentBytes: positive('largeArgumentBytes', options.largeArgumentBytes, 1024 * 1024),
    keyTtlMs: positive('keyTtlMs', options.keyTtlMs, 3_600_000),
    reconcileMs: positive('reconcileMs', options.reconcileMs, 2000),
    outageMs,
    leaseMs: positive('leaseMs', options.leaseMs, outageMs + 15_000),
    secret: resolveSecret(options.secret, 'redis backend option secret'),
  };
}

/** The Redis keys of one queue. A call's keys all contain its id, and nothing else does. */
export class Keys {
  readonly base: string;
  constructor(
    readonly prefix: string,
    readonly queue: string,
  ) {
    this.base = `${prefix}:${queue}`;
  }
  /** Exists while the call runs (refreshed by the caller): workers skip the jobs of a call without it. */
  marker(call: string): string {
    return `${this.base}:jt:${call}:m`;
  }
  results(call: string): string {
    return `${this.base}:jt:${call}:r`;
  }
  payload(call: string, seq: number): string {
    return `${this.base}:jt:${call}:p:${seq}`;
  }
  blob(call: string, hash: string): string {
    return `${this.base}:jt:${call}:b:${hash}`;
  }
  /** BullMQ job id (no `:` allowed) and the key of the job's hash. */
  jobId(call: string, seq: number): string {
    return `jt-${call}-${seq}`;
  }
  jobKey(call: string, seq: number): string {
    return `${this.base}:${this.jobId(call, seq)}`;
  }
  get cancelChannel(): string {
    return `${this.base}:jt:cancel`;
  }
  get workerSet(): string {
    return `${this.base}:jt:workers`;
  }
  worker(id: string): string {
    return `${this.base}:jt:w:${id}`;
  }
}

/** `redis://user:***@host:6379/0`: a URL fit for messages. Never prints a password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/** Where a connection goes, for messages: the URL without password, or `host:port` of options. */
export function describeConnection(connection: RedisConnection): string {
  if (typeof connection === 'string') return redactUrl(connection);
  if (connection.url) return redactUrl(connection.url);
  const scheme = connection.tls ? 'rediss' : 'redis';
  return `${scheme}://${connection.host ?? '127.0.0.1'}:${connection.port ?? 6379}`;
}

/** Removes anything that looks like credentials from a message (a URL with a password, AUTH arguments). */
export function scrub(message: string): string {
  return message.replace(/(rediss?:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
}

/**
 * A new ioredis client. Every client rides out an outage: commands wait (offline queue, resent after a
 * reconnection) instead of failing after a few retries, and reconnection is tried at least every
 * second. What bounds the wait is ours: `outageMs` on the caller (reachability.ts), and closing the
 * client, which rejects what still waits.
 */
export function createClient(connection: RedisConnection, role: { blocking: boolean; name: string }): Redis {
  const common: RedisOptions = {
    connectionName: role.name,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(100 * times, 1000),
    connectTimeout: 10_000,
    lazyConnect: false,
  };
  let client: Redis;
  if (typeof connection === 'string') {
    client = new Redis(connection, common);
  } else {
    const { url, ...rest } = connection;
    client = url ? new Redis(url, { ...common, ...rest }) : new Redis({ ...common, ...rest });
  }
  // Errors are reported where commands fail; an unhandled 'error' event would print to stderr.
  client.on('error', () => {});
  return client;
}
