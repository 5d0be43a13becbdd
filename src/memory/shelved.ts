/** References to results returned by `callAndShelve`: the value stays on disk until `get()`. */
import { decodeContainer } from '../persist.ts';
import type { EntryMetadata } from './entry-metadata.ts';
import { MemoryError } from './errors.ts';
import { readEntryBytes, removeQuietly } from './store.ts';

/** A reference to a result kept in the cache (from `callAndShelve`); `get()` loads it. */
export interface ShelvedResult<T> {
  /** Loads the stored value (or returns the value when caching is off). */
  get(): Promise<T>;
  /** Removes the entry from the cache. */
  clear(): Promise<void>;
  /** The entry file, or undefined when caching is off. */
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

/** A result kept in the cache: holds only the entry's path and metadata, loads the value on `get()`. */
export class CachedResult<T> implements ShelvedResult<T> {
  constructor(
    readonly path: string,
    readonly metadata: EntryMetadata | undefined,
  ) {}
  async get(): Promise<T> {
    const buf = await readEntryBytes(this.path);
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
    await removeQuietly(this.path);
  }
  toJSON(): { path: string; metadata: EntryMetadata | undefined } {
    return { path: this.path, metadata: this.metadata };
  }
}
