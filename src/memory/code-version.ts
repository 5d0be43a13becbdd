/**
 * Records, once per process and function, which code version its cache folder holds, and says once when
 * the code changed since earlier results were stored (they are then not used, as in joblib).
 */
import { dirname } from 'node:path';
import { cacheWarningOnce } from './cache-warnings.ts';
import type { FunctionIdentity } from './identity.ts';
import { prepareLocation } from './location.ts';
import { readFuncInfo, writeFuncInfo } from './store.ts';

/** Source text kept in the function's info file is cut here: it is there for humans, not for matching. */
const MAX_STORED_SOURCE = 20000;

export class CodeVersionCheck {
  private checked: Promise<void> | undefined;

  constructor(
    private readonly funcDir: string,
    private readonly identity: FunctionIdentity,
  ) {}

  /** Runs the check the first time (and again after a failure or `forget()`); later calls share it. */
  ensure(): Promise<void> {
    this.checked ??= this.record().catch((err: unknown) => {
      this.checked = undefined;
      throw err;
    });
    return this.checked;
  }

  /** The function's folder was removed: the next call records the version again. */
  forget(): void {
    this.checked = undefined;
  }

  private async record(): Promise<void> {
    const { funcDir, identity } = this;
    const stored = await readFuncInfo(funcDir);
    if (stored?.codeVersion === identity.codeVersion) return;
    if (stored !== undefined) {
      cacheWarningOnce(
        'JOBLIB_TS_CODE_CHANGED',
        funcDir,
        `[Memory] ${identity.displayName}: the function's code changed since its cached results were stored (version ${stored.codeVersion} -> ${identity.codeVersion}); earlier results will not be used and are recomputed`,
      );
    }
    const source = identity.source;
    await prepareLocation(dirname(funcDir));
    await writeFuncInfo(funcDir, {
      id: identity.id,
      codeVersion: identity.codeVersion,
      source: source.length > MAX_STORED_SOURCE ? `${source.slice(0, MAX_STORED_SOURCE)}…` : source,
      updated: Date.now(),
    });
  }
}
