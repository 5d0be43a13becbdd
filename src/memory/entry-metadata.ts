/** What is stored beside every cached result, and the rules that decide whether an entry may still be used. */
import { checkNonNegative } from './checks.ts';

/** Metadata stored with every cache entry, passed to `cacheValidationCallback`. */
export interface EntryMetadata {
  /** The function's cache identity (see `functionIdentity`). */
  function: string;
  /** Code version the entry belongs to (source hash or explicit `version`). */
  codeVersion: string;
  /** Hash of the arguments that are part of the key. */
  argsId: string;
  /** How long the original call took, in milliseconds. */
  durationMs: number;
  /** When the entry was written (milliseconds since the epoch). */
  time: number;
  /** Short description of each argument in the key, by parameter name (or `arg<i>`). */
  input: Record<string, string>;
  /** Node version that wrote the entry. */
  node: string;
}

/** A cached function's rules for accepting a stored entry (from its `CacheOptions`). */
export interface EntryPolicy {
  readonly expiresAfterMs: number | undefined;
  readonly validate: ((metadata: EntryMetadata) => boolean) | undefined;
}

/** Why a stored entry may not be used: it expired, or `cacheValidationCallback` rejected it; undefined when it may. */
export function entryProblem(policy: EntryPolicy, meta: EntryMetadata): 'expired' | 'rejected' | undefined {
  if (policy.expiresAfterMs !== undefined && Date.now() - meta.time >= policy.expiresAfterMs)
    return 'expired';
  if (policy.validate !== undefined && !policy.validate(meta)) return 'rejected';
  return undefined;
}

/** True when the entry has metadata, has not expired and passes the user's validation callback. */
export function isEntryValid(policy: EntryPolicy, meta: EntryMetadata | undefined): boolean {
  return meta !== undefined && entryProblem(policy, meta) === undefined;
}

/** A `cacheValidationCallback` that accepts entries younger than the given duration (joblib's `expires_after`). */
export function expiresAfter(duration: {
  days?: number;
  hours?: number;
  minutes?: number;
  seconds?: number;
  milliseconds?: number;
}): (metadata: EntryMetadata) => boolean {
  const ms =
    (duration.days ?? 0) * 86_400_000 +
    (duration.hours ?? 0) * 3_600_000 +
    (duration.minutes ?? 0) * 60_000 +
    (duration.seconds ?? 0) * 1000 +
    (duration.milliseconds ?? 0);
  checkNonNegative(ms, 'expiresAfter(duration): the total duration', false);
  return (metadata) => Date.now() - metadata.time < ms;
}
