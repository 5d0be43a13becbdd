export { type CacheWarningCode, MemoryError, type MemoryErrorCode } from './errors.ts';
export {
  type AnyFunction,
  type FunctionIdentity,
  type FunctionLocation,
  type FunctionLocator,
  functionIdentity,
  parseParams,
  setFunctionLocator,
} from './identity.ts';
export {
  type CachedFunction,
  CachedResult,
  type CacheOptions,
  type EntryMetadata,
  expiresAfter,
  Memory,
  type MemoryOptions,
  type ReduceSizeOptions,
  type ReduceSizeResult,
  type ShelvedResult,
} from './memory.ts';
