/**
 * Where a `Memory` keeps its entries: the interface a store implements. The local disk store is the
 * default (`disk-store.ts`); `redisStore(url)` from `joblib-ts/redis` shares one cache across a
 * cluster; a user can write another (S3, a database) from these few methods.
 *
 * Keys are relative, `/`-separated paths: `<function>/<code version>/<args hash>.jlts` for an entry,
 * `<function>/func.json` and `<function>/<code version>/code.json` for what the cache knows of the code.
 * Values are opaque bytes: checksums, compression and damage detection are the Memory's, not the store's.
 */

/** An item of the store, as `list` gives it. */
export interface StoreItem {
  /** Its key (see above). */
  readonly key: string;
  /** Its size in bytes. */
  readonly size: number;
  /** When it was last read or written (milliseconds since the epoch): eviction removes the oldest first. */
  readonly usedMs: number;
}

/** A lock taken with `CacheStore.lock`: held until `release()` (or its owner dies). */
export interface StoreLock {
  release(): Promise<void>;
}

export interface CacheStore {
  /** Where the entries are, for messages: a folder, `redis://host:6379/0 (prefix joblib:)`. No password. */
  readonly description: string;
  /** The whole value under `key`, or undefined. Marks it as used (for least-recently-used eviction). */
  read(key: string): Promise<Uint8Array | undefined>;
  /**
   * The first `bytes` bytes of the value under `key` and its whole size, or undefined. Optional: without
   * it, `read` is used (and a metadata check reads the whole value).
   */
  readHead?(key: string, bytes: number): Promise<{ head: Uint8Array; size: number } | undefined>;
  /** Stores `parts` (concatenated) under `key`, replacing any value atomically: a reader sees the old or the new. */
  write(key: string, parts: readonly Uint8Array[]): Promise<void>;
  /** Removes `key`; nothing happens when it is absent. */
  remove(key: string): Promise<void>;
  /** Every item whose key starts with `prefix` (`''`: all). */
  list(prefix: string): Promise<StoreItem[]>;
  /** Removes every item whose key starts with `prefix`; `removeAll('')` leaves nothing of the store behind. */
  removeAll(prefix: string): Promise<void>;
  /**
   * Single-flight: takes the lock `key` and resolves to it, or to undefined while another live owner holds
   * it. A lock whose owner died (a killed process, a lost machine) must free itself within a bounded time.
   * Optional: without it, concurrent misses in different processes each compute the value.
   */
  lock?(key: string): Promise<StoreLock | undefined>;
  /** Closes connections, if any. */
  close?(): Promise<void>;
}

/** The extension of entry keys (the other keys are the cache's notes on code). */
export const ENTRY_SUFFIX = '.jlts';

/** Checks that `store` has the required methods; `argName` names it in the error. */
export function isCacheStore(store: unknown): store is CacheStore {
  if (typeof store !== 'object' || store === null) return false;
  const s = store as Record<string, unknown>;
  return (
    typeof s.description === 'string' &&
    ['read', 'write', 'remove', 'list', 'removeAll'].every((m) => typeof s[m] === 'function')
  );
}
