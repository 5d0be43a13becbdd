/**
 * `redisStore(url)`: a `Memory` store in Redis, so that every worker of a cluster shares one cache.
 * `new Memory({ store: redisStore(process.env.REDIS_URL) })`. Every key is under one prefix:
 *
 * ```
 * <prefix>e:<key>          HASH  id, size, chunks, used        one entry (or note) of the cache
 * <prefix>c:<id>:<n>       STRING                              its bytes, in chunks of `chunkBytes`
 * <prefix>index            ZSET  key -> last use (ms)          for list() and least-recently-used eviction
 * <prefix>lock:<key>       STRING owner token, PX lease        single-flight, renewed while computing
 *                                                             (also from the lease thread: see lease.ts)
 * ```
 *
 * A write stores new chunks under a fresh id, then swaps the entry to them in one script, then removes
 * the old chunks: a reader sees the old value or the new one (a reader caught mid-swap reads again).
 * Checksums and damage are the Memory's (the bytes are a dump container). `ttlMs` makes entries expire
 * that long after their last use; `bytesLimit` eviction works through `list()` as on disk.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { CacheStore, StoreItem, StoreLock } from '../../memory/cache-store.ts';
import { MemoryError } from '../../memory/errors.ts';
import { leaseFor } from './lease.ts';
import { describeConnection, type RedisConnection, scrub } from './options.ts';
import { firstContact } from './reachability.ts';

export interface RedisStoreOptions {
  /** Every key of the cache starts with this. Default `'joblib-ts:memory:'`. */
  prefix?: string;
  /** Values are stored in chunks of this many bytes. Default 8 MiB. */
  chunkBytes?: number;
  /** Entries expire this many milliseconds after their last use. Default: never. */
  ttlMs?: number;
  /** A single-flight lock's lease, renewed while its owner computes; a dead owner's lock frees itself after it. Default 30 s. */
  lockLeaseMs?: number;
  /** How long the first contact may take before the store says Redis is unreachable. Default 10 s. */
  connectTimeoutMs?: number;
}

const SWAP = `
local old = redis.call('HMGET', KEYS[1], 'id', 'chunks')
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'size', ARGV[2], 'chunks', ARGV[3], 'used', ARGV[4])
if ARGV[5] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) else redis.call('PERSIST', KEYS[1]) end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
return old`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

function positive(value: unknown, name: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  )
    throw new MemoryError(
      'ERR_MEMORY_OPTION',
      `redisStore(url, options): options.${name} must be a positive ${integer ? 'integer' : 'number'}; got ${JSON.stringify(value)}`,
    );
  return value;
}

/** A Redis store for `new Memory({ store })`: `url` is a Redis URL (default `REDIS_URL`) or connection options. */
export function redisStore(url?: string | RedisConnection, options: RedisStoreOptions = {}): CacheStore {
  const connection = url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (typeof connection !== 'string' && (typeof connection !== 'object' || connection === null))
    throw new MemoryError(
      'ERR_MEMORY_OPTION',
      'redisStore(url, options): url must be a Redis URL or connection options',
    );
  if (typeof options !== 'object' || options === null)
    throw new MemoryError('ERR_MEMORY_OPTION', 'redisStore(url, options): options must be an object');
  const prefix = options.prefix ?? 'joblib-ts:memory:';
  if (typeof prefix !== 'string' || prefix.length === 0)
    throw new MemoryError(
      'ERR_MEMORY_OPTION',
      'redisStore(url, options): options.prefix must be a non-empty string',
    );
  return new RedisStore(connection, {
    prefix,
    chunkBytes: positive(options.chunkBytes, 'chunkBytes', true) ?? 8 * 1024 * 1024,
    ttlMs: positive(options.ttlMs, 'ttlMs', true),
    lockLeaseMs: positive(options.lockLeaseMs, 'lockLeaseMs', true) ?? 30_000,
    connectTimeoutMs: positive(options.connectTimeoutMs, 'connectTimeoutMs', false) ?? 10_000,
  });
}

interface Settings {
  prefix: string;
  chunkBytes: number;
  ttlMs: number | undefined;
  lockLeaseMs: number;
  connectTimeoutMs: number;
}

/** Splits `parts` into chunks of `size` bytes without copying what lies within one part. */
function chunked(parts: readonly Uint8Array[], size: number): Buffer[] {
  const out: Buffer[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for (const part of parts) {
    let view = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    while (view.byteLength > 0) {
      const take = Math.min(size - pendingBytes, view.byteLength);
      pending.push(view.subarray(0, take));
      pendingBytes += take;
      view = view.subarray(take);
      if (pendingBytes === size) {
        out.push(pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending));
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0 || out.length === 0) out.push(Buffer.concat(pending));
  return out;
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

class RedisStore implements CacheStore {
  readonly description: string;
  private connecting: Promise<Redis> | undefined;
  private client: Redis | undefined;
  private pending = 0;

  constructor(
    private readonly connection: string | RedisConnection,
    private readonly settings: Settings,
  ) {
    this.description = `${describeConnection(connection)} (prefix ${settings.prefix})`;
  }

  private entryKey(key: string): string {
    return `${this.settings.prefix}e:${key}`;
  }
  private chunkKey(id: string, n: number): string {
    return `${this.settings.prefix}c:${id}:${n}`;
  }
  private get indexKey(): string {
    return `${this.settings.prefix}index`;
  }

  /** Runs `op` on the client (made at first use), keeping the program alive only while commands are out. */
  private async run<T>(op: (client: Redis) => Promise<T>): Promise<T> {
    this.pending++;
    try {
      const client = await this.connect();
      this.setRefed(true);
      return await op(client);
    } finally {
      this.pending--;
      if (this.pending === 0) this.setRefed(false);
    }
  }

  private setRefed(refed: boolean): void {
    const stream = (
      this.client as unknown as { stream?: { ref?: () => void; unref?: () => void } } | undefined
    )?.stream;
    if (refed) stream?.ref?.();
    else stream?.unref?.();
  }

  private connect(): Promise<Redis> {
    this.connecting ??= (async () => {
      const common = {
        connectionName: 'joblib-ts-memory',
        maxRetriesPerRequest: 2,
        connectTimeout: this.settings.connectTimeoutMs,
        retryStrategy: (times: number) => Math.min(100 * times, 1000),
      };
      let client: Redis;
      const c = this.connection;
      if (typeof c === 'string') client = new Redis(c, common);
      else {
        const { url, ...rest } = c;
        client = url ? new Redis(url, { ...common, ...rest }) : new Redis({ ...common, ...rest });
      }
      client.on('error', () => {});
      try {
        await firstContact(client, this.connection, this.settings.connectTimeoutMs);
      } catch (error) {
        client.disconnect();
        this.connecting = undefined;
        throw new MemoryError(
          'ERR_MEMORY_STORE',
          `redisStore: ${scrub((error as Error).message)} (the cache's store ${this.description})`,
          { cause: error },
        );
      }
      this.client = client;
      return client;
    })();
    return this.connecting;
  }

  async read(key: string): Promise<Uint8Array | undefined> {
    return this.run(async (client) => {
      for (let attempt = 0; ; attempt++) {
        const [id, chunks] = await client.hmget(this.entryKey(key), 'id', 'chunks');
        if (id == null || chunks == null) return undefined;
        const pipe = client.pipeline();
        for (let n = 0; n < Number(chunks); n++) pipe.getBuffer(this.chunkKey(id, n));
        const got = ((await pipe.exec()) ?? []).map(([, v]) => v as Buffer | null);
        if (got.some((b) => b === null)) {
          // Replaced meanwhile (its old chunks removed) or expired: read again, then give what there is.
          if (attempt < 2) continue;
          return Buffer.concat(got.filter((b): b is Buffer => b !== null));
        }
        await this.touch(client, key, id, Number(chunks));
        return got.length === 1 ? (got[0] as Buffer) : Buffer.concat(got as Buffer[]);
      }
    });
  }

  private async touch(client: Redis, key: string, id: string, chunks: number): Promise<void> {
    const now = Date.now();
    const pipe = client.pipeline().hset(this.entryKey(key), 'used', now).zadd(this.indexKey, now, key);
    const { ttlMs } = this.settings;
    if (ttlMs !== undefined) {
      pipe.pexpire(this.entryKey(key), ttlMs);
      for (let n = 0; n < chunks; n++) pipe.pexpire(this.chunkKey(id, n), ttlMs);
    }
    await pipe.exec();
  }

  async readHead(key: string, bytes: number): Promise<{ head: Uint8Array; size: number } | undefined> {
    if (bytes > this.settings.chunkBytes) {
      const whole = await this.read(key);
      return whole === undefined ? undefined : { head: whole.subarray(0, bytes), size: whole.byteLength };
    }
    return this.run(async (client) => {
      const [id, size] = await client.hmget(this.entryKey(key), 'id', 'size');
      if (id == null || size == null) return undefined;
      const head = await client.getrangeBuffer(this.chunkKey(id, 0), 0, bytes - 1);
      return { head, size: Number(size) };
    });
  }

  async write(key: string, parts: readonly Uint8Array[]): Promise<void> {
    const chunks = chunked(parts, this.settings.chunkBytes);
    const size = chunks.reduce((s, c) => s + c.byteLength, 0);
    const id = randomBytes(8).toString('hex');
    const { ttlMs } = this.settings;
    await this.run(async (client) => {
      const pipe = client.pipeline();
      chunks.forEach((chunk, n) => {
        if (ttlMs !== undefined) pipe.set(this.chunkKey(id, n), chunk, 'PX', ttlMs);
        else pipe.set(this.chunkKey(id, n), chunk);
      });
      const results = (await pipe.exec()) ?? [];
      const failed = results.find(([err]) => err !== null)?.[0];
      if (failed) throw failed;
      const old = (await client.eval(
        SWAP,
        2,
        this.entryKey(key),
        this.indexKey,
        id,
        String(size),
        String(chunks.length),
        String(Date.now()),
        ttlMs === undefined ? '' : String(ttlMs),
        key,
      )) as [string | null, string | null];
      await this.dropChunks(client, old[0], old[1]);
    });
  }

  private async dropChunks(client: Redis, id: string | null, chunks: string | null): Promise<void> {
    if (id === null || chunks === null) return;
    const keys = Array.from({ length: Number(chunks) }, (_, n) => this.chunkKey(id, n));
    if (keys.length > 0) await client.unlink(...keys);
  }

  async remove(key: string): Promise<void> {
    await this.run(async (client) => {
      const [id, chunks] = await client.hmget(this.entryKey(key), 'id', 'chunks');
      await client.pipeline().unlink(this.entryKey(key)).zrem(this.indexKey, key).exec();
      await this.dropChunks(client, id ?? null, chunks ?? null);
    });
  }

  async list(prefix: string): Promise<StoreItem[]> {
    return this.run(async (client) => {
      const flat = await client.zrange(this.indexKey, 0, -1, 'WITHSCORES');
      const keys: string[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const key = flat[i] as string;
        if (key.startsWith(prefix)) keys.push(key);
      }
      if (keys.length === 0) return [];
      const pipe = client.pipeline();
      for (const key of keys) pipe.hmget(this.entryKey(key), 'size', 'used');
      const rows = (await pipe.exec()) ?? [];
      const items: StoreItem[] = [];
      const gone: string[] = [];
      rows.forEach(([, row], i) => {
        const [size, used] = (row as (string | null)[]) ?? [];
        const key = keys[i] as string;
        if (size === null || size === undefined)
          gone.push(key); // expired (ttlMs)
        else items.push({ key, size: Number(size), usedMs: Number(used ?? 0) });
      });
      if (gone.length > 0) await client.zrem(this.indexKey, ...gone);
      return items;
    });
  }

  async removeAll(prefix: string): Promise<void> {
    if (prefix !== '') {
      for (const item of await this.list(prefix)) await this.remove(item.key);
      return;
    }
    await this.run(async (client) => {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(
          cursor,
          'MATCH',
          `${globEscape(this.settings.prefix)}*`,
          'COUNT',
          1000,
        );
        cursor = next;
        if (keys.length > 0) await client.unlink(...keys);
      } while (cursor !== '0');
    });
  }

  async lock(key: string): Promise<StoreLock | undefined> {
    const lockKey = `${this.settings.prefix}lock:${key}`;
    const token = `${process.pid}-${randomBytes(8).toString('hex')}`;
    const lease = this.settings.lockLeaseMs;
    const taken = await this.run((client) => client.set(lockKey, token, 'PX', lease, 'NX'));
    if (taken !== 'OK') return undefined;
    // Renewed from the backend's lease thread too: an owner busy with synchronous work keeps its lock.
    const thread = leaseFor(this.connection);
    thread.hold(lockKey, lease);
    const beat = setInterval(
      () => {
        this.run((client) => client.eval(RENEW, 1, lockKey, token, String(lease))).catch(() => undefined);
      },
      Math.max(50, Math.floor(lease / 3)),
    );
    beat.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(beat);
        thread.release(lockKey);
        await this.run((client) => client.eval(RELEASE, 1, lockKey, token)).catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.connecting = undefined;
    if (!client) return;
    // The reply to QUIT must hold the program, or it could exit with the close still pending.
    (client as unknown as { stream?: { ref?: () => void } }).stream?.ref?.();
    await client.quit().catch(() => client.disconnect());
  }
}
