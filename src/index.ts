/** joblib-ts: the public API. Everything else under src/ is internal. */
export type {
  BackendBatch,
  BackendConfig,
  BatchOutcome,
  ParallelBackend,
  ParallelBackendFactory,
} from './backends/backend.ts';
export { registerParallelBackend } from './backends/backend.ts';
export { cpuCount, effectiveNJobs } from './cpu.ts';
export type { DelayedFunction, Task, TaskResult } from './delayed.ts';
export { delayed, isTask } from './delayed.ts';
export type { TaskFailureInfo } from './errors.ts';
export {
  InvalidArgumentError,
  JoblibError,
  MainGuardError,
  TaskImportError,
  UnreachableFunctionError,
  UnsendableArgumentError,
  WorkerCrashedError,
} from './errors.ts';
export type { FunctionRef, LocatedFunction } from './locate/index.ts';
export { isMainProgram } from './main-guard.ts';
export type { BuiltinBackendName, ParallelOptions, RunResults } from './parallel.ts';
export { Parallel } from './parallel.ts';
