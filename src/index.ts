/** joblib-ts: the public API. Everything else under src/ is internal. */
export type {
  BackendBatch,
  BackendConfig,
  BatchOutcome,
  ParallelBackend,
  ParallelBackendFactory,
} from './backends/backend.ts';
export { registerParallelBackend } from './backends/registry.ts';
export { createSharedArray } from './backends/threads.ts';
export type { ParallelConfig } from './config.ts';
export { parallelConfig } from './config.ts';
export type { TaskContext } from './context/task-context.ts';
export { taskContext, workerContext } from './context/task-context.ts';
export { cpuCount, effectiveNJobs } from './cpu.ts';
export type { DelayedFunction, Task, TaskResult } from './delayed.ts';
export { delayed, isTask } from './delayed.ts';
export type { Retries, RetryOptions } from './dispatch/retry.ts';
export type {
  ErrorMode,
  FulfilledEntry,
  IndexedSettledResult,
  RejectedEntry,
  SettledResult,
} from './dispatch/settled.ts';
export type { IndexedResult } from './dispatch/stream.ts';
export type { TaskFailureInfo, WorkerForensics } from './errors.ts';
export {
  InterruptedError,
  InvalidArgumentError,
  JoblibError,
  MainGuardError,
  MissingExtraError,
  TaskImportError,
  TimeoutError,
  UncapturableValueError,
  UnreachableFunctionError,
  UnsendableArgumentError,
  WorkerCrashedError,
} from './errors.ts';
export type {
  EventDraft,
  EventListener,
  JoblibEvent,
  JoblibEventOf,
  JoblibEventType,
  RecycleReason,
} from './events.ts';
export { EventHub } from './events.ts';
export type { HashAlgorithm, HashErrorCode, HashOptions } from './hash.ts';
export { HashError, hash } from './hash.ts';
export { isMainProgram } from './main-guard.ts';
export type {
  CachedFunction,
  CacheOptions,
  CacheStore,
  CacheWarningCode,
  CodeChange,
  CodePart,
  EntryMetadata,
  Explanation,
  MemoryErrorCode,
  MemoryOptions,
  MissReason,
  ReduceSizeOptions,
  ReduceSizeResult,
  ShelvedResult,
  StoreItem,
  StoreLock,
} from './memory/index.ts';
export { CachedResult, DiskStore, expiresAfter, Memory, MemoryError } from './memory/index.ts';
export type { BuiltinBackendName, LogsMode, ParallelOptions, ReturnAs, RunOptions } from './options.ts';
export type { RunResults, RunReturn, SettledResults } from './parallel.ts';
export { Parallel } from './parallel.ts';
export type { Compress, CompressMethod, DumpOptions, DumpResult, PersistErrorCode } from './persist.ts';
export { dump, load, PersistError, zstdAvailable } from './persist.ts';
export type { ProgressReporter, ProgressReporterOptions } from './progress/bar.ts';
export { createProgressReporter } from './progress/bar.ts';
