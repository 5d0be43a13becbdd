import { JoblibError, systemErrorCode } from '../errors.ts';

/** Error codes of `MemoryError`. */
export type MemoryErrorCode =
  /** A constructor, `cache()` or `reduceSize()` argument is not what was expected. */
  | 'ERR_MEMORY_OPTION'
  /** The cache folder cannot be created or written (read-only, a file, a special file system such as /proc). */
  | 'ERR_MEMORY_LOCATION'
  /** The arguments of a cached call cannot be hashed into a cache key (a function, a cycle...). */
  | 'ERR_MEMORY_ARGS'
  /** The result could not be written to the cache (unserializable value, disk error) with `onStoreError: 'throw'`. */
  | 'ERR_MEMORY_STORE'
  /** A shelved result (`callAndShelve`) is no longer in the cache, or is unreadable. */
  | 'ERR_MEMORY_MISSING';

/** Errors thrown by `Memory`, cached functions and shelved results. */
export class MemoryError extends JoblibError {
  override readonly name = 'MemoryError';
  readonly code: MemoryErrorCode;
  /** The operating system's code when a file operation failed: `ENOSPC`, `EACCES`, `EROFS`... */
  readonly systemCode: string | undefined;
  constructor(code: MemoryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.systemCode = systemErrorCode(options?.cause);
  }
}
