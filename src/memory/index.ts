export type { CacheOptions } from './cache-options.ts';
export type { CacheWarningCode } from './cache-warnings.ts';
export { type EntryMetadata, expiresAfter } from './entry-metadata.ts';
export { MemoryError, type MemoryErrorCode } from './errors.ts';
export { type FunctionIdentity, functionIdentity, parseParams } from './identity.ts';
export { type CachedFunction, Memory, type MemoryOptions } from './memory.ts';
export type { ReduceSizeOptions, ReduceSizeResult } from './reduce-size.ts';
export { CachedResult, type ShelvedResult } from './shelved.ts';
