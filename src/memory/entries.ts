/**
 * Reading and writing one cached result under a function's policies: an entry that is unreadable,
 * expired or rejected counts as a miss and is removed; a result that cannot be stored throws or warns,
 * as `onStoreError` says.
 */

import { describeWriteFailure, systemErrorCode } from '../errors.ts';
import {
  decodeContainer,
  encodeContainer,
  PersistError,
  type ResolvedCompress,
  readContainerMeta,
  serializeValue,
} from '../persist.ts';
import { cacheWarning } from './cache-warnings.ts';
import { type EntryMetadata, type EntryPolicy, isEntryValid } from './entry-metadata.ts';
import { MemoryError } from './errors.ts';
import { readEntryBytes, removeQuietly, writeEntry } from './store.ts';

/** What writing an entry needs from its Memory. */
export interface StoreHost {
  readonly compress: ResolvedCompress;
  /** Called with the size of every entry written (the Memory keeps its `bytesLimit` with it). */
  afterStore(bytes: number): Promise<void>;
}

/** Loads a valid entry, or undefined (removing it when it is invalid, corrupt or truncated). */
export async function loadValidEntry(
  path: string,
  policy: EntryPolicy,
  label: string,
): Promise<{ value: unknown; metadata: EntryMetadata } | undefined> {
  const buf = await readEntryBytes(path);
  if (buf === undefined) return undefined;
  let decoded: { meta: unknown; value: unknown };
  try {
    decoded = await decodeContainer(buf, path);
  } catch (err) {
    if (!(err instanceof PersistError)) throw err;
    cacheWarning(
      'JOBLIB_TS_CORRUPT_ENTRY',
      `[Memory] ${label}: cached result ${path} is unreadable (${err.message.replace(/^load: \S+ /, '')}); recomputing it`,
    );
    await removeQuietly(path);
    return undefined;
  }
  const meta = decoded.meta as EntryMetadata | undefined;
  if (meta === undefined || !isEntryValid(policy, meta)) {
    await removeQuietly(path);
    return undefined;
  }
  return { value: decoded.value, metadata: meta };
}

/**
 * The metadata of a valid entry, reading only its header; undefined when the entry is missing,
 * unreadable, invalid, or the validation callback throws. Removes nothing.
 */
export async function readValidMetadata(
  path: string,
  policy: EntryPolicy,
): Promise<EntryMetadata | undefined> {
  try {
    const meta = (await readContainerMeta(path)).meta as EntryMetadata | undefined;
    return isEntryValid(policy, meta) ? meta : undefined;
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
  at: { path: string; dir: string },
  value: unknown,
  metadata: EntryMetadata,
  how: { label: string; onStoreError: 'throw' | 'warn' },
): Promise<EntryMetadata | undefined> {
  try {
    const raw = serializeValue(value, `${how.label}: result`);
    const enc = await encodeContainer(raw, { compress: host.compress, meta: metadata });
    await writeEntry(at.path, at.dir, enc.parts);
    await host.afterStore(enc.bytes);
    return metadata;
  } catch (err) {
    const reason = `${describeWriteFailure(err)}${systemErrorCode(err) ? `, writing ${at.path}` : ''}`;
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
