/** References to results returned by `callAndShelve`: the value stays on disk until `get()`. */
import { decodeContainer } from '../persist.ts';
import type { CacheStore } from './cache-store.ts';
import { placeOf } from './entries.ts';
import type { EntryMetadata } from './entry-metadata.ts';
import { MemoryError } from './errors.ts';

/** A reference to a result kept in the cache (from `callAndShelve`); `get()` loads it. */
export interface ShelvedResult<T> {
  /** Loads the stored value (or returns the value when caching is off). */
  get(): Promise<T>;
  /** Removes the entry from the cache. */
  clear(): Promise<void>;
  /** Where the entry is (its file, for the disk store), or undefined when caching is off. */
  readonly path: string | undefined;
  readonly metadata: EntryMetadata | undefined;
}

/** A result that is not in the cache (caching off, or storing failed with `onStoreError: 'warn'`): holds the value. */
export class NotCachedResult<T> implements ShelvedResult<T> {
  readonly path = undefined;
  readonly metadata = undefined;
  constructor(private readonly value: T) {}
  async get(): Promise<T> {
    return this.value;
  }
  async clear(): Promise<void> {}
}

/** A result kept in the cache: holds only the entry's key and metadata, loads the value on `get()`. */
export class CachedResult<T> implements ShelvedResult<T> {
  readonly path: string;
  constructor(
    private readonly store: CacheStore,
    private readonly key: string,
    readonly metadata: EntryMetadata | undefined,
  ) {
    this.path = placeOf(store, key);
  }
  async get(): Promise<T> {
    const bytes = await this.store.read(this.key);
    const buf =
      bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf === undefined) {
      throw new MemoryError(
        'ERR_MEMORY_MISSING',
        `CachedResult.get(): the entry ${this.path} is no longer in the cache (cleared or evicted)`,
      );
    }
    try {
      return (await decodeContainer(buf, this.path)).value as T;
    } catch (err) {
      throw new MemoryError(
        'ERR_MEMORY_MISSING',
        `CachedResult.get(): the entry ${this.path} is unreadable`,
        {
          cause: err,
        },
      );
    }
  }
  async clear(): Promise<void> {
    await this.store.remove(this.key);
  }
  toJSON(): { path: string; metadata: EntryMetadata | undefined } {
    return { path: this.path, metadata: this.metadata };
  }
}
