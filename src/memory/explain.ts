/**
 * Why a cached call missed: never computed with these arguments (and the nearest entry by arguments),
 * the code changed (which function, where) or a package's version did, the entry expired, the
 * validation callback rejected it, or it was damaged. `cachedFn.explain(...args)` returns it; `verbose >=
 * 2` prints it on every miss.
 */

import { type CacheStore, ENTRY_SUFFIX } from './cache-store.ts';
import { readCodeParts } from './code-version.ts';
import { type CodeChange, diffCode } from './deep-code.ts';
import { type EntryState, readEntryMetadata } from './entries.ts';
import type { EntryMetadata, EntryPolicy } from './entry-metadata.ts';

/** Why a call is a hit or a miss. */
export type MissReason =
  | 'new-arguments'
  | 'code-changed'
  | 'dependency-changed'
  | 'expired'
  | 'rejected'
  | 'damaged';

/** What `cachedFn.explain(...args)` returns. */
export interface Explanation {
  /** True when the call would be served from the cache. */
  readonly hit: boolean;
  readonly reason: 'hit' | MissReason;
  /** One line for people. */
  readonly message: string;
  /** Where the entry is, or would be. */
  readonly entry: string;
  /** For `code-changed` and `dependency-changed`: the parts that differ (functions, constants, packages). */
  readonly changes?: readonly CodeChange[];
  /** For `new-arguments`: the stored entry whose arguments are closest, and which arguments differ. */
  readonly nearest?: {
    readonly input: Readonly<Record<string, string>>;
    readonly differs: readonly string[];
  };
}

/** What explaining needs to know of the function. */
export interface ExplainContext {
  readonly store: CacheStore;
  readonly label: string;
  /** The function's folder key (`<function>`), its current code version and parts. */
  readonly dir: string;
  readonly version: string;
  readonly parts: Readonly<Record<string, import('./deep-code.ts').CodePart>>;
  readonly policy: EntryPolicy;
}

/** Entries read to find the nearest one by arguments: a bound on the cost of a miss's explanation. */
const NEAREST_SCAN = 64;

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}min` : `${Math.round(s / 3600)}h`;
}

/** The explanation of a lookup that found an entry it cannot use, or found it usable. */
export function explainFound(
  state: Exclude<EntryState, { state: 'missing' }>,
  entry: string,
  policy: EntryPolicy,
): Explanation {
  switch (state.state) {
    case 'ok':
      return { hit: true, reason: 'hit', message: 'hit: a stored result is used', entry };
    case 'expired':
      return {
        hit: false,
        reason: 'expired',
        message: `the entry expired: stored ${ago(Date.now() - state.metadata.time)} ago, expiresAfterMs is ${policy.expiresAfterMs}`,
        entry,
      };
    case 'rejected':
      return {
        hit: false,
        reason: 'rejected',
        message: `cacheValidationCallback rejected the entry (stored ${ago(Date.now() - state.metadata.time)} ago)`,
        entry,
      };
    case 'damaged':
      return { hit: false, reason: 'damaged', message: `the entry was damaged: ${state.detail}`, entry };
  }
}

function describeChange(c: CodeChange): string {
  if (c.part.kind === 'package') {
    if (c.change === 'changed') return `${c.before?.hash ?? c.part.name} -> ${c.part.hash}`;
    return `${c.part.hash} ${c.change === 'added' ? 'is used now' : 'is no longer used'}`;
  }
  const what = c.part.kind === 'constant' ? `constant ${c.part.name}` : `${c.part.kind} ${c.part.name}`;
  return `${what} (${c.part.where}) ${c.change === 'changed' ? 'changed' : c.change === 'added' ? 'is used now' : 'is no longer used'}`;
}

/** Why there is no entry for `argsId` under the current code: older code had one, or these arguments are new. */
export async function explainMissing(
  ctx: ExplainContext,
  argsId: string,
  input: Readonly<Record<string, string>>,
  entry: string,
): Promise<Explanation> {
  const items = await ctx.store.list(`${ctx.dir}/`);
  const current = `${ctx.dir}/${ctx.version}/`;
  const elsewhere = items
    .filter((i) => i.key.endsWith(`/${argsId}${ENTRY_SUFFIX}`) && !i.key.startsWith(current))
    .sort((a, b) => b.usedMs - a.usedMs)[0];
  if (elsewhere !== undefined) {
    const before = elsewhere.key.slice(ctx.dir.length + 1).split('/')[0] ?? '';
    const parts = await readCodeParts(ctx.store, ctx.dir, before);
    const changes =
      parts !== undefined && Object.keys(ctx.parts).length > 0 ? diffCode(parts, ctx.parts) : [];
    const onlyPackages = changes.length > 0 && changes.every((c) => c.part.kind === 'package');
    const detail =
      changes.length > 0
        ? changes.map(describeChange).join('; ')
        : `code version ${before} -> ${ctx.version}`;
    return {
      hit: false,
      reason: onlyPackages ? 'dependency-changed' : 'code-changed',
      message: `${onlyPackages ? "a dependency's version changed" : 'the code changed'} since this call was stored: ${detail}`,
      entry,
      changes,
    };
  }
  const nearest = await nearestByArguments(
    ctx,
    items.filter((i) => i.key.startsWith(current) && i.key.endsWith(ENTRY_SUFFIX)).map((i) => i.key),
    input,
  );
  const near =
    nearest === undefined
      ? ''
      : `; nearest entry: ${ctx.label}(${Object.entries(nearest.input)
          .map(([k, v]) => `${k}=${v}`)
          .join(
            ', ',
          )}), which differs in ${nearest.differs.join(', ') || 'nothing shown (the arguments differ beyond their preview)'}`;
  return {
    hit: false,
    reason: 'new-arguments',
    message: `never computed with these arguments${near}`,
    entry,
    ...(nearest ? { nearest } : {}),
  };
}

async function nearestByArguments(
  ctx: ExplainContext,
  keys: readonly string[],
  input: Readonly<Record<string, string>>,
): Promise<{ input: Record<string, string>; differs: string[] } | undefined> {
  let best: { input: Record<string, string>; differs: string[] } | undefined;
  for (const key of keys.slice(0, NEAREST_SCAN)) {
    const meta: EntryMetadata | undefined = await readEntryMetadata(ctx.store, key);
    if (meta === undefined) continue;
    const names = new Set([...Object.keys(input), ...Object.keys(meta.input)]);
    const differs = [...names].filter((n) => input[n] !== meta.input[n]);
    if (best === undefined || differs.length < best.differs.length) best = { input: meta.input, differs };
  }
  return best;
}
