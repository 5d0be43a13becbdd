/**
 * The cache of one wrapped function: its folders, its code-version check, and the calls that share one
 * computation per key (concurrent misses on the same arguments wait for the first).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describeWriteFailure } from '../errors.ts';
import type { ResolvedCacheOptions } from './cache-options.ts';
import { cacheWarning, cacheWarningOnce } from './cache-warnings.ts';
import { type CallKey, callKey } from './call-key.ts';
import { CodeVersionCheck } from './code-version.ts';
import { loadValidEntry, readValidMetadata, type StoreHost, storeEntry } from './entries.ts';
import type { EntryMetadata } from './entry-metadata.ts';
import { MemoryError } from './errors.ts';
import type { FunctionIdentity } from './identity.ts';
import { CachedResult, NotCachedResult, type ShelvedResult } from './shelved.ts';
import { ENTRY_EXT, entryLooksComplete } from './store.ts';
import { logCacheHit, logCallEnd, logCallStart, type VerboseLog } from './verbose.ts';

/** A call's result, with the metadata of its entry (undefined when it was not stored). */
export interface CallOutcome<R> {
  value: Awaited<R>;
  metadata: EntryMetadata | undefined;
}

/** What a cached function needs from its Memory. */
export interface CacheHost extends StoreHost {
  readonly location: string | null;
  readonly verbose: number;
  write(line: string): void;
}

export class FunctionCache<A extends unknown[], R> {
  private readonly funcDir: string;
  private readonly codeDir: string;
  private readonly code: CodeVersionCheck;
  private readonly log: VerboseLog;
  private readonly inflight = new Map<string, Promise<CallOutcome<R>>>();

  constructor(
    private readonly host: CacheHost,
    location: string,
    private readonly fn: (...args: A) => R,
    private readonly identity: FunctionIdentity,
    private readonly settings: ResolvedCacheOptions<A>,
  ) {
    this.funcDir = join(location, identity.dirName);
    this.codeDir = join(this.funcDir, identity.codeVersion);
    this.code = new CodeVersionCheck(this.funcDir, identity);
    this.log = { verbose: settings.verbose, write: (line) => host.write(line) };
    if (!identity.named) {
      cacheWarningOnce(
        'JOBLIB_TS_NO_NAME',
        this.funcDir,
        `[Memory] cache(): the function has no name, so it is stored as 'anonymous' and may collide with other anonymous functions; pass { name: '...' }`,
      );
    }
  }

  private get label(): string {
    return this.identity.displayName;
  }

  /** Returns the stored result, or computes and stores it; `force` recomputes even on a hit. */
  async getOrCompute(args: A, force: boolean): Promise<CallOutcome<R>> {
    const key = this.keyOf(args);
    await this.recordCode();
    const path = this.entryPath(key.argsId);
    if (!force) {
      const hit = await this.lookup(path);
      if (hit !== undefined) return hit;
    }
    const pending = this.inflight.get(path);
    if (pending !== undefined && !force) return pending;
    const job = this.compute(args, path, key).finally(() => this.inflight.delete(path));
    this.inflight.set(path, job);
    return job;
  }

  /** Makes sure the result is stored, and returns a reference to it that loads the value on demand. */
  async shelve(args: A): Promise<ShelvedResult<Awaited<R>>> {
    const { argsId } = this.keyOf(args);
    await this.recordCode();
    const path = this.entryPath(argsId);
    const stored = await readValidMetadata(path, this.settings.policy);
    if (stored !== undefined) return new CachedResult(path, stored);
    const res = await this.getOrCompute(args, false);
    if (res.metadata === undefined) return new NotCachedResult(res.value);
    return new CachedResult<Awaited<R>>(path, res.metadata);
  }

  /** True when a complete, valid entry exists; reads headers only. */
  async has(args: A): Promise<boolean> {
    const path = this.entryPath(this.keyOf(args).argsId);
    if (!(await entryLooksComplete(path))) return false;
    return (await readValidMetadata(path, this.settings.policy)) !== undefined;
  }

  /** Removes every entry of the function, all code versions. */
  async clear(): Promise<void> {
    await rm(this.funcDir, { recursive: true, force: true, maxRetries: 3 });
    this.code.forget();
  }

  /**
   * Records the code version before the first call reads or writes entries. A write that fails (a full
   * disk, a read-only folder) is a `MemoryError` naming the folder, or, with `onStoreError: 'warn'`, a
   * warning: the call then runs uncached instead of failing.
   */
  private async recordCode(): Promise<void> {
    try {
      await this.code.ensure();
    } catch (err) {
      const reason = describeWriteFailure(err);
      if (this.settings.onStoreError === 'throw') {
        throw new MemoryError(
          'ERR_MEMORY_STORE',
          `${this.label}: cannot write the cache folder ${this.funcDir}: ${reason}; pass { onStoreError: 'warn' } to run uncached`,
          { cause: err },
        );
      }
      cacheWarning(
        'JOBLIB_TS_STORE_FAILED',
        `[Memory] ${this.label}: cannot write the cache folder ${this.funcDir}: ${reason}`,
      );
    }
  }

  private keyOf(args: A): CallKey {
    return callKey(this.settings.plan, this.settings.keyFn, this.label, args);
  }

  private entryPath(argsId: string): string {
    return join(this.codeDir, `${argsId}${ENTRY_EXT}`);
  }

  private async lookup(path: string): Promise<CallOutcome<R> | undefined> {
    const t0 = performance.now();
    const hit = await loadValidEntry(path, this.settings.policy, this.label);
    if (hit === undefined) return undefined;
    logCacheHit(this.log, this.label, path, performance.now() - t0);
    return { value: hit.value as Awaited<R>, metadata: hit.metadata };
  }

  private async compute(args: A, path: string, key: CallKey): Promise<CallOutcome<R>> {
    logCallStart(this.log, this.identity.id, this.label, args, path);
    const t0 = performance.now();
    const value = (await this.fn(...args)) as Awaited<R>;
    const durationMs = performance.now() - t0;
    const metadata: EntryMetadata = {
      function: this.identity.id,
      codeVersion: this.identity.codeVersion,
      argsId: key.argsId,
      durationMs,
      time: Date.now(),
      input: key.input,
      node: process.version,
    };
    const stored = await storeEntry(this.host, { path, dir: this.codeDir }, value, metadata, {
      label: this.label,
      onStoreError: this.settings.onStoreError,
    });
    logCallEnd(this.log, this.label, durationMs);
    return { value, metadata: stored };
  }
}
