/**
 * Reading and writing one cached result in a store under a function's policies: an entry that is
 * unreadable, expired or rejected counts as a miss (and says which) and is removed; a result that cannot
 * be stored throws or warns, as `onStoreError` says.
 */

import { describeWriteFailure, systemErrorCode } from '../errors.ts';
import {
  decodeContainer,
  decodeContainerMeta,
  encodeContainer,
  HEADER_BYTES,
  PersistError,
  type ResolvedCompress,
  serializeValue,
} from '../persist.ts';
import type { CacheStore } from './cache-store.ts';
import { cacheWarning } from './cache-warnings.ts';
import { type EntryMetadata, type EntryPolicy, entryProblem } from './entry-metadata.ts';
import { MemoryError } from './errors.ts';

/** What writing an entry needs from its Memory. */
export interface StoreHost {
  readonly compress: ResolvedCompress;
  /** Called with the size of every entry written (the Memory keeps its `bytesLimit` with it). */
  afterStore(bytes: number): Promise<void>;
}

/** What a lookup found. */
export type EntryState =
  | { readonly state: 'ok'; readonly value: unknown; readonly metadata: EntryMetadata }
  | { readonly state: 'missing' }
  | { readonly state: 'damaged'; readonly detail: string }
  | { readonly state: 'expired' | 'rejected'; readonly metadata: EntryMetadata };

/** A key's place, for messages: the file of a disk store, the store and key otherwise. */
export function placeOf(store: CacheStore, key: string): string {
  return `${store.description}/${key}`;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Loads an entry and says whether it may be used; one that may not is removed (a damaged one with a
 * warning), unless `look` (`explain` only looks).
 */
export async function loadEntry(
  store: CacheStore,
  key: string,
  policy: EntryPolicy,
  label: string,
  look = false,
): Promise<EntryState> {
  const bytes = await store.read(key);
  if (bytes === undefined) return { state: 'missing' };
  const place = placeOf(store, key);
  let decoded: { meta: unknown; value: unknown };
  try {
    decoded = await decodeContainer(asBuffer(bytes), place);
  } catch (err) {
    if (!(err instanceof PersistError)) throw err;
    const detail = err.message.replace(/^load: \S+ /, '');
    if (look) return { state: 'damaged', detail };
    cacheWarning(
      'JOBLIB_TS_CORRUPT_ENTRY',
      `[Memory] ${label}: cached result ${place} is unreadable (${detail}); recomputing it`,
    );
    await store.remove(key);
    return { state: 'damaged', detail };
  }
  const metadata = decoded.meta as EntryMetadata | undefined;
  if (metadata === undefined) {
    if (!look) await store.remove(key);
    return { state: 'damaged', detail: 'it has no metadata' };
  }
  const problem = entryProblem(policy, metadata);
  if (problem !== undefined) {
    if (!look) await store.remove(key);
    return { state: problem, metadata };
  }
  return { state: 'ok', value: decoded.value, metadata };
}

const HEAD_GUESS = 16 * 1024;

/**
 * The metadata of an entry, reading only its header where the store can; undefined when the entry is
 * missing or damaged. Removes nothing, calls no policy.
 */
export async function readEntryMetadata(store: CacheStore, key: string): Promise<EntryMetadata | undefined> {
  try {
    const place = placeOf(store, key);
    if (store.readHead === undefined) {
      const bytes = await store.read(key);
      return bytes === undefined
        ? undefined
        : (decodeContainerMeta(bytes, bytes.byteLength, place) as EntryMetadata);
    }
    let got = await store.readHead(key, HEAD_GUESS);
    if (got === undefined) return undefined;
    const announced = got.head.byteLength >= HEADER_BYTES ? asBuffer(got.head).readUInt32LE(32) : 0;
    if (HEADER_BYTES + announced > got.head.byteLength && HEADER_BYTES + announced <= got.size) {
      got = await store.readHead(key, HEADER_BYTES + announced);
      if (got === undefined) return undefined;
    }
    return decodeContainerMeta(got.head, got.size, place) as EntryMetadata | undefined;
  } catch (err) {
    if (err instanceof PersistError) return undefined;
    throw err;
  }
}

/** The metadata of a usable entry (header only), or undefined: missing, damaged, expired or rejected. */
export async function readValidMetadata(
  store: CacheStore,
  key: string,
  policy: EntryPolicy,
): Promise<EntryMetadata | undefined> {
  const meta = await readEntryMetadata(store, key);
  if (meta === undefined) return undefined;
  try {
    return entryProblem(policy, meta) === undefined ? meta : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stores a computed result. Returns its metadata, or undefined when it could not be stored and
 * `onStoreError` is `'warn'`; with `'throw'` the failure is a `MemoryError` (`ERR_MEMORY_STORE`).
 */
export async function storeEntry(
  host: StoreHost,
  store: CacheStore,
  key: string,
  value: unknown,
  metadata: EntryMetadata,
  how: { label: string; onStoreError: 'throw' | 'warn' },
): Promise<EntryMetadata | undefined> {
  try {
    const raw = serializeValue(value, `${how.label}: result`);
    const enc = await encodeContainer(raw, { compress: host.compress, meta: metadata });
    await store.write(key, enc.parts);
    await host.afterStore(enc.bytes);
    return metadata;
  } catch (err) {
    const reason = `${describeWriteFailure(err)}${systemErrorCode(err) ? `, writing ${placeOf(store, key)}` : ''}`;
    if (how.onStoreError === 'throw') {
      throw new MemoryError(
        'ERR_MEMORY_STORE',
        `${how.label}: the result could not be cached (${reason}); pass { onStoreError: 'warn' } to return it uncached`,
        { cause: err },
      );
    }
    cacheWarning(
      'JOBLIB_TS_STORE_FAILED',
      `[Memory] ${how.label}: the result could not be cached (${reason})`,
    );
    return undefined;
  }
}
