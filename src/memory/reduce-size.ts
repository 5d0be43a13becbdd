/** Eviction: removes least recently used entries until a size, count or age limit holds. */

import { type CacheStore, ENTRY_SUFFIX, type StoreItem } from './cache-store.ts';
import { checkBytes, checkNonNegative } from './checks.ts';

export interface ReduceSizeOptions {
  /** Remove least recently used entries until the total size is at most this (bytes, or `'10G'`...). */
  bytesLimit?: number | string;
  /** Remove least recently used entries until at most this many remain. */
  itemsLimit?: number;
  /** Remove entries not used for longer than this many milliseconds. */
  ageLimitMs?: number;
}

export interface ReduceSizeResult {
  removedItems: number;
  removedBytes: number;
  remainingItems: number;
  remainingBytes: number;
}

interface Limits {
  bytes: number | undefined;
  items: number | undefined;
  ageMs: number | undefined;
}

/** Checks the options even when there is nothing to reduce, so that a mistake shows at once. */
export function checkReduceSizeOptions(options: ReduceSizeOptions): Limits {
  const { bytesLimit, itemsLimit, ageLimitMs } = options;
  return {
    bytes: bytesLimit === undefined ? undefined : checkBytes(bytesLimit, 'reduceSize: bytesLimit'),
    items:
      itemsLimit === undefined ? undefined : checkNonNegative(itemsLimit, 'reduceSize: itemsLimit', true),
    ageMs:
      ageLimitMs === undefined ? undefined : checkNonNegative(ageLimitMs, 'reduceSize: ageLimitMs', false),
  };
}

/** Evicts entries of `store`, least recently used first (by last use, which every hit sets). */
export async function reduceSize(store: CacheStore, limits: Limits): Promise<ReduceSizeResult> {
  const items = (await store.list('')).filter((it) => it.key.endsWith(ENTRY_SUFFIX));
  items.sort((a, b) => a.usedMs - b.usedMs || (a.key < b.key ? -1 : 1));
  const { doomed, remainingItems, remainingBytes } = chooseEvictions(items, limits, Date.now());
  await Promise.all(doomed.map((it) => store.remove(it.key)));
  return {
    removedItems: doomed.length,
    removedBytes: doomed.reduce((s, it) => s + it.size, 0),
    remainingItems,
    remainingBytes,
  };
}

/** Walks the entries oldest first and picks each one that breaks a limit while it is still kept. */
function chooseEvictions(
  items: readonly StoreItem[],
  limits: Limits,
  now: number,
): { doomed: StoreItem[]; remainingItems: number; remainingBytes: number } {
  let total = items.reduce((s, it) => s + it.size, 0);
  let count = items.length;
  const doomed: StoreItem[] = [];
  for (const it of items) {
    const tooOld = limits.ageMs !== undefined && now - it.usedMs > limits.ageMs;
    const tooMany = limits.items !== undefined && count > limits.items;
    const tooBig = limits.bytes !== undefined && total > limits.bytes;
    if (!tooOld && !tooMany && !tooBig) continue;
    doomed.push(it);
    total -= it.size;
    count--;
  }
  return { doomed, remainingItems: count, remainingBytes: total };
}
