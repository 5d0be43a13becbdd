/**
 * Records, once per process and function, which code version the cache holds for it (`func.json`) and
 * the parts of that code (`<code version>/code.json`, which `explain` compares with), and says once when
 * the code changed since earlier results were stored (they are then not used, as in joblib).
 */

import type { CacheStore } from './cache-store.ts';
import { cacheWarningOnce } from './cache-warnings.ts';
import type { CodePart, StoredFacts } from './deep-code.ts';

/** Source text kept in the function's info file is cut here: it is there for humans, not for matching. */
const MAX_STORED_SOURCE = 20000;

/** What `func.json` holds. */
export interface StoredFunctionInfo {
  id: string;
  codeVersion: string;
  source: string;
  updated: number;
}

/** The code a cached function's entries are stored under. */
export interface ResolvedCode {
  /** Folder name of the entries: a hash of the deep code, of the source, or `v-<version>`. */
  readonly version: string;
  /** The parts of the deep code (empty with `version` or `deepKey: false`). */
  readonly parts: Readonly<Record<string, CodePart>>;
  /** What the parse of each function said, kept with the parts so that the next process need not parse. */
  readonly facts?: StoredFacts;
}

async function readJson(store: CacheStore, key: string): Promise<unknown> {
  try {
    const bytes = await store.read(key);
    return bytes === undefined ? undefined : JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined; // unreadable: treated as absent, rewritten
  }
}

export async function readFuncInfo(store: CacheStore, dir: string): Promise<StoredFunctionInfo | undefined> {
  const parsed = await readJson(store, `${dir}/func.json`);
  if (parsed && typeof parsed === 'object' && typeof (parsed as StoredFunctionInfo).codeVersion === 'string')
    return parsed as StoredFunctionInfo;
  return undefined;
}

/** The parts stored for a code version, or undefined. */
export async function readCodeParts(
  store: CacheStore,
  dir: string,
  version: string,
): Promise<Record<string, CodePart> | undefined> {
  const parsed = await readJson(store, `${dir}/${version}/code.json`);
  if (parsed && typeof parsed === 'object' && typeof (parsed as { parts?: unknown }).parts === 'object')
    return (parsed as { parts: Record<string, CodePart> }).parts;
  return undefined;
}

/**
 * The parse facts stored with the last code version recorded for the function (`func.json`'s version),
 * or undefined: what lets a new process key an unchanged function without parsing it.
 */
export async function readStoredFacts(store: CacheStore, dir: string): Promise<StoredFacts | undefined> {
  const info = await readFuncInfo(store, dir);
  if (info === undefined) return undefined;
  const parsed = await readJson(store, `${dir}/${info.codeVersion}/code.json`);
  const facts = (parsed as { facts?: Partial<StoredFacts> } | undefined)?.facts;
  if (typeof facts?.format === 'string' && facts.bySource !== null && typeof facts.bySource === 'object')
    return facts as StoredFacts;
  return undefined;
}

const json = (value: unknown) => [Buffer.from(`${JSON.stringify(value, null, 2)}\n`)];

export class CodeVersionCheck {
  private checked: Promise<void> | undefined;

  constructor(
    private readonly store: CacheStore,
    private readonly dir: string,
    private readonly identity: { readonly id: string; readonly displayName: string; readonly source: string },
  ) {}

  /** Runs the check the first time (and again after a failure or `forget()`); later calls share it. */
  ensure(code: ResolvedCode): Promise<void> {
    this.checked ??= this.record(code).catch((err: unknown) => {
      this.checked = undefined;
      throw err;
    });
    return this.checked;
  }

  /** The function's entries were removed: the next call records the version again. */
  forget(): void {
    this.checked = undefined;
  }

  private async record(code: ResolvedCode): Promise<void> {
    const { store, dir, identity } = this;
    const stored = await readFuncInfo(store, dir);
    if (stored?.codeVersion === code.version) return;
    if (stored !== undefined) {
      cacheWarningOnce(
        'JOBLIB_TS_CODE_CHANGED',
        `${store.description}/${dir}`,
        `[Memory] ${identity.displayName}: the function's code changed since its cached results were stored (version ${stored.codeVersion} -> ${code.version}); earlier results will not be used and are recomputed (explain() says what changed)`,
      );
    }
    if (Object.keys(code.parts).length > 0)
      await store.write(
        `${dir}/${code.version}/code.json`,
        json(code.facts === undefined ? { parts: code.parts } : { parts: code.parts, facts: code.facts }),
      );
    const source = identity.source;
    await store.write(
      `${dir}/func.json`,
      json({
        id: identity.id,
        codeVersion: code.version,
        source: source.length > MAX_STORED_SOURCE ? `${source.slice(0, MAX_STORED_SOURCE)}…` : source,
        updated: Date.now(),
      }),
    );
  }
}
