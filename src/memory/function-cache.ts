/**
 * The cache of one wrapped function: its keys in the store, its code version, and the calls that compute
 * each result once: concurrent misses on the same arguments wait for the first, in this thread (a shared
 * promise) and in other threads, processes and machines (the store's lock, when it has one).
 */
import type { AnyFunction } from '../delayed.ts';
import { describeWriteFailure } from '../errors.ts';
import type { ResolvedCacheOptions } from './cache-options.ts';
import type { CacheStore } from './cache-store.ts';
import { ENTRY_SUFFIX } from './cache-store.ts';
import { cacheWarning, cacheWarningOnce } from './cache-warnings.ts';
import { type CallKey, callKey } from './call-key.ts';
import { CodeVersionCheck, type ResolvedCode, readStoredFacts } from './code-version.ts';
import { deepCode } from './deep-code.ts';
import { loadEntry, placeOf, readValidMetadata, type StoreHost, storeEntry } from './entries.ts';
import type { EntryMetadata } from './entry-metadata.ts';
import { MemoryError } from './errors.ts';
import { type Explanation, explainFound, explainMissing } from './explain.ts';
import type { FunctionIdentity } from './identity.ts';
import { CachedResult, NotCachedResult, type ShelvedResult } from './shelved.ts';
import { logCacheHit, logCallEnd, logCallStart, logMiss, type VerboseLog } from './verbose.ts';

/** A call's result, with the metadata of its entry (undefined when it was not stored). */
export interface CallOutcome<R> {
  value: Awaited<R>;
  metadata: EntryMetadata | undefined;
}

/** What a cached function needs from its Memory. */
export interface CacheHost extends StoreHost {
  /** Where entries are kept; null when caching is off. */
  readonly store: CacheStore | null;
  readonly verbose: number;
  /** How long a call waits for another owner of its entry before computing it itself (`Infinity`: no limit). */
  readonly lockWaitMs: number;
  write(line: string): void;
}

/** First and longest pause of a call waiting for another owner's result. */
const WAIT_FIRST_MS = 10;
const WAIT_MAX_MS = 200;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class FunctionCache<A extends unknown[], R> {
  private readonly dir: string;
  private readonly code: CodeVersionCheck;
  private readonly log: VerboseLog;
  private readonly inflight = new Map<string, Promise<CallOutcome<R>>>();
  private resolved: Promise<ResolvedCode> | undefined;

  constructor(
    private readonly host: CacheHost,
    private readonly store: CacheStore,
    private readonly fn: (...args: A) => R,
    private readonly identity: FunctionIdentity,
    private readonly settings: ResolvedCacheOptions<A>,
  ) {
    this.dir = identity.dirName;
    this.code = new CodeVersionCheck(store, this.dir, identity);
    this.log = { verbose: settings.verbose, write: (line) => host.write(line) };
    if (!identity.named) {
      cacheWarningOnce(
        'JOBLIB_TS_NO_NAME',
        placeOf(store, this.dir),
        `[Memory] cache(): the function has no name, so it is stored as 'anonymous' and may collide with other anonymous functions; pass { name: '...' }`,
      );
    }
  }

  private get label(): string {
    return this.identity.displayName;
  }

  /**
   * The code version, worked out at the first call (not at `cache()`: the helpers a function uses may be
   * defined after it is wrapped): `version`, else the deep code, else the source text. The deep code
   * starts from the parse facts stored with the last version recorded, so that an unchanged function
   * is not parsed again in a new process.
   */
  private resolveCode(): Promise<ResolvedCode> {
    this.resolved ??= this.resolveNow();
    return this.resolved;
  }

  private async resolveNow(): Promise<ResolvedCode> {
    const shallow = { version: this.identity.codeVersion, parts: {} };
    if (this.identity.versioned || !this.settings.deepKey) return shallow;
    // Only a speed-up: a store that cannot be read now is met (and reported) by the call itself.
    const stored = await readStoredFacts(this.store, this.dir).catch(() => undefined);
    try {
      const deep = deepCode(this.fn as AnyFunction, stored);
      return { version: deep.version, parts: deep.parts, facts: deep.facts };
    } catch (err) {
      cacheWarningOnce(
        'JOBLIB_TS_SHALLOW_KEY',
        placeOf(this.store, this.dir),
        `[Memory] ${this.label}: the code it reaches could not be read (${err instanceof Error ? err.message : String(err)}); its key covers its own source only`,
      );
      return shallow;
    }
  }

  /** Returns the stored result, or computes and stores it; `force` recomputes even on a hit. */
  async getOrCompute(args: A, force: boolean): Promise<CallOutcome<R>> {
    const key = this.keyOf(args);
    const code = await this.prepare();
    const entry = this.entryKey(code, key.argsId);
    if (!force) {
      const hit = await this.lookup(entry, key, code);
      if (hit !== undefined) return hit;
    }
    const pending = this.inflight.get(entry);
    if (pending !== undefined && !force) return pending;
    const job = (
      force ? this.compute(args, entry, key, code) : this.computeOnce(args, entry, key, code)
    ).finally(() => this.inflight.delete(entry));
    this.inflight.set(entry, job);
    return job;
  }

  /** Makes sure the result is stored, and returns a reference to it that loads the value on demand. */
  async shelve(args: A): Promise<ShelvedResult<Awaited<R>>> {
    const key = this.keyOf(args);
    const code = await this.prepare();
    const entry = this.entryKey(code, key.argsId);
    const stored = await readValidMetadata(this.store, entry, this.settings.policy);
    if (stored !== undefined) return new CachedResult(this.store, entry, stored);
    const res = await this.getOrCompute(args, false);
    if (res.metadata === undefined) return new NotCachedResult(res.value);
    return new CachedResult<Awaited<R>>(this.store, entry, res.metadata);
  }

  /** True when a complete, valid entry exists; reads headers only. */
  async has(args: A): Promise<boolean> {
    const entry = this.entryKey(await this.resolveCode(), this.keyOf(args).argsId);
    return (await readValidMetadata(this.store, entry, this.settings.policy)) !== undefined;
  }

  /** Why a call with these arguments would hit or miss; changes nothing in the store. */
  async explain(args: A): Promise<Explanation> {
    const key = this.keyOf(args);
    const code = await this.resolveCode();
    const entry = this.entryKey(code, key.argsId);
    const state = await loadEntry(this.store, entry, this.settings.policy, this.label, true);
    if (state.state !== 'missing')
      return explainFound(state, placeOf(this.store, entry), this.settings.policy);
    return explainMissing(this.explainContext(code), key.argsId, key.input, placeOf(this.store, entry));
  }

  /** Removes every entry of the function, all code versions. */
  async clear(): Promise<void> {
    await this.store.removeAll(`${this.dir}/`);
    this.code.forget();
  }

  private explainContext(code: ResolvedCode) {
    return {
      store: this.store,
      label: this.label,
      dir: this.dir,
      version: code.version,
      parts: code.parts,
      policy: this.settings.policy,
    };
  }

  /**
   * Resolves the code version and records it before the first call reads or writes entries. A write that
   * fails (a full disk, a read-only folder, an unreachable server) is a `MemoryError` naming the store, or,
   * with `onStoreError: 'warn'`, a warning: the call then runs uncached instead of failing.
   */
  private async prepare(): Promise<ResolvedCode> {
    const code = await this.resolveCode();
    try {
      await this.code.ensure(code);
    } catch (err) {
      const where = placeOf(this.store, this.dir);
      if (err instanceof MemoryError && this.settings.onStoreError === 'throw') throw err;
      const reason = err instanceof MemoryError ? err.message : describeWriteFailure(err);
      if (this.settings.onStoreError === 'throw') {
        throw new MemoryError(
          'ERR_MEMORY_STORE',
          `${this.label}: cannot write the cache folder ${where}: ${reason}; pass { onStoreError: 'warn' } to run uncached`,
          { cause: err },
        );
      }
      cacheWarning(
        'JOBLIB_TS_STORE_FAILED',
        `[Memory] ${this.label}: cannot write the cache folder ${where}: ${reason}`,
      );
    }
    return code;
  }

  private keyOf(args: A): CallKey {
    return callKey(this.settings.plan, this.settings.keyFn, this.label, args);
  }

  private entryKey(code: ResolvedCode, argsId: string): string {
    return `${this.dir}/${code.version}/${argsId}${ENTRY_SUFFIX}`;
  }

  /** A usable entry, or undefined (saying why at verbose >= 2). */
  private async lookup(entry: string, key: CallKey, code: ResolvedCode): Promise<CallOutcome<R> | undefined> {
    const t0 = performance.now();
    let state: Awaited<ReturnType<typeof loadEntry>>;
    try {
      state = await loadEntry(this.store, entry, this.settings.policy, this.label);
    } catch (err) {
      if (this.settings.onStoreError === 'throw') throw err;
      cacheWarning(
        'JOBLIB_TS_STORE_FAILED',
        `[Memory] ${this.label}: cannot read ${placeOf(this.store, entry)}: ${err instanceof Error ? err.message : String(err)}`,
      );
      return undefined;
    }
    if (state.state === 'ok') {
      logCacheHit(this.log, this.label, placeOf(this.store, entry), performance.now() - t0);
      return { value: state.value as Awaited<R>, metadata: state.metadata };
    }
    if (this.log.verbose >= 2) {
      const why =
        state.state === 'missing'
          ? await explainMissing(this.explainContext(code), key.argsId, key.input, placeOf(this.store, entry))
          : explainFound(state, placeOf(this.store, entry), this.settings.policy);
      logMiss(this.log, this.label, why.message);
    }
    return undefined;
  }

  /** A usable entry or undefined, saying nothing (a waiter polling for another owner's result). */
  private async peek(entry: string): Promise<CallOutcome<R> | undefined> {
    const state = await loadEntry(this.store, entry, this.settings.policy, this.label);
    return state.state === 'ok' ? { value: state.value as Awaited<R>, metadata: state.metadata } : undefined;
  }

  /**
   * Computes under the store's lock for this entry: the owner computes and stores; the others wait and
   * read its result. When the owner fails (an error, or it died: the store frees its lock), one of the
   * waiters takes the lock and computes. Without a lock (a store that has none), computes at once.
   */
  private async computeOnce(
    args: A,
    entry: string,
    key: CallKey,
    code: ResolvedCode,
  ): Promise<CallOutcome<R>> {
    if (this.store.lock === undefined) return this.compute(args, entry, key, code);
    const waitMs = this.host.lockWaitMs;
    const giveUpAt = performance.now() + waitMs;
    let pause = WAIT_FIRST_MS;
    for (;;) {
      let lock: Awaited<ReturnType<NonNullable<CacheStore['lock']>>>;
      try {
        lock = await this.store.lock(entry);
      } catch (err) {
        if (this.settings.onStoreError === 'throw') throw err;
        cacheWarning(
          'JOBLIB_TS_STORE_FAILED',
          `[Memory] ${this.label}: computing without a lock: ${err instanceof Error ? err.message : String(err)}`,
        );
        return this.compute(args, entry, key, code);
      }
      if (lock !== undefined) {
        try {
          // Stored between our miss and our lock: read it.
          return (await this.peek(entry)) ?? (await this.compute(args, entry, key, code));
        } finally {
          await lock.release();
        }
      }
      const left = giveUpAt - performance.now();
      if (left <= 0) {
        // Waited as long as asked (lockWaitMs): compute here too. Never a wrong result: both write the
        // same entry, each whole.
        cacheWarning(
          'JOBLIB_TS_LOCK_WAIT',
          `[Memory] ${this.label}: another caller has been computing this entry for longer than lockWaitMs (${waitMs} ms); computing it here too`,
        );
        return this.compute(args, entry, key, code);
      }
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, WAIT_MAX_MS);
      const done = await this.peek(entry);
      if (done !== undefined) return done;
    }
  }

  private async compute(args: A, entry: string, key: CallKey, code: ResolvedCode): Promise<CallOutcome<R>> {
    logCallStart(this.log, this.identity.id, this.label, args, placeOf(this.store, entry));
    const t0 = performance.now();
    const value = (await this.fn(...args)) as Awaited<R>;
    const durationMs = performance.now() - t0;
    const metadata: EntryMetadata = {
      function: this.identity.id,
      codeVersion: code.version,
      argsId: key.argsId,
      durationMs,
      time: Date.now(),
      input: key.input,
      node: process.version,
    };
    const stored = await storeEntry(this.host, this.store, entry, value, metadata, {
      label: this.label,
      onStoreError: this.settings.onStoreError,
    });
    logCallEnd(this.log, this.label, durationMs);
    return { value, metadata: stored };
  }
}
