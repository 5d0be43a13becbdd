/**
 * The stores the shared store suites run over: the disk store on a temp folder, and the Redis store
 * under a key prefix of its own (skipped without a Redis, failing under JOBLIB_TS_REQUIRE_REDIS=1).
 * Each case says what it left behind, so that a test can check `clear()` and clean up after itself.
 */
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { redisStore } from '../../src/backends/redis/index.ts';
import { type CacheStore, DiskStore } from '../../src/memory/index.ts';
import { REDIS_URL, redis, redisSkipReason, uniquePrefix } from '../backends/redis/helpers.ts';
import { tempDir } from '../helpers.ts';

/** How a child process reaches the same store (see fixtures/slow-entry.ts). */
export type StoreSpec = { kind: 'disk'; dir: string } | { kind: 'redis'; url: string; prefix: string };

export interface MadeStore {
  readonly store: CacheStore;
  readonly spec: StoreSpec;
  /** What the store holds that a cleared cache would not (files but `.gitignore`; Redis keys). */
  leftovers(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export interface StoreCase {
  readonly name: string;
  /** Undefined to run; a reason to skip. */
  skip(): Promise<string | undefined>;
  make(): Promise<MadeStore>;
}

async function files(root: string): Promise<string[]> {
  try {
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile() && e.name !== '.gitignore')
      .map((e) => relative(root, join(e.parentPath ?? root, e.name)));
  } catch {
    return [];
  }
}

async function redisKeys(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis().scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

let redisSkip: Promise<string | undefined> | undefined;

export function storeCases(): StoreCase[] {
  return [
    {
      name: 'disk',
      skip: async () => undefined,
      make: async () => {
        const dir = join(tempDir('joblib-ts-store-'), 'cache');
        return {
          store: new DiskStore(dir),
          spec: { kind: 'disk', dir },
          leftovers: () => files(dir),
          cleanup: async () => {},
        };
      },
    },
    {
      name: 'redis',
      skip: () => {
        redisSkip ??= redisSkipReason();
        return redisSkip;
      },
      make: async () => {
        // A prefix of its own; chunks of 1 MiB so that a test's large value spans many.
        const prefix = `${uniquePrefix()}:memory:`;
        const store = redisStore(REDIS_URL, { prefix, chunkBytes: 1024 * 1024 });
        return {
          store,
          spec: { kind: 'redis', url: REDIS_URL, prefix },
          leftovers: () => redisKeys(prefix),
          cleanup: async () => {
            const keys = await redisKeys(prefix);
            if (keys.length > 0) await redis().unlink(...keys);
            await store.close?.();
          },
        };
      },
    },
  ];
}
