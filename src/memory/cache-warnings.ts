/**
 * The warnings a cache emits instead of failing (`process.emitWarning` with type `CacheWarning`), and the
 * once-per-function memory that keeps the repeated ones from flooding the output.
 */

/** Codes of the warnings emitted with `process.emitWarning(message, { type: 'CacheWarning', code })`. */
export type CacheWarningCode =
  | 'JOBLIB_TS_CODE_CHANGED'
  | 'JOBLIB_TS_CORRUPT_ENTRY'
  | 'JOBLIB_TS_STORE_FAILED'
  | 'JOBLIB_TS_NO_NAME'
  | 'JOBLIB_TS_SHALLOW_KEY'
  | 'JOBLIB_TS_LOCK_WAIT';

export function cacheWarning(code: CacheWarningCode, message: string): void {
  process.emitWarning(message, { type: 'CacheWarning', code });
}

/** Function folders already warned about, per code: each is said once per thread, however often it is wrapped. */
const warnedFolders = new Map<CacheWarningCode, Set<string>>();

/** Emits the warning unless one with this code was already emitted for this function folder. */
export function cacheWarningOnce(code: CacheWarningCode, funcDir: string, message: string): void {
  let seen = warnedFolders.get(code);
  if (seen === undefined) {
    seen = new Set();
    warnedFolders.set(code, seen);
  }
  if (seen.has(funcDir)) return;
  seen.add(funcDir);
  cacheWarning(code, message);
}
