/** The backends joblib-ts brings, as entries of the registry (`registry.ts`). */
import { importExtra } from '../extras.ts';
import type { ParallelBackendFactory } from './backend.ts';
import { ProcessesBackend } from './processes.ts';
import { SequentialBackend } from './sequential.ts';
import { ThreadsBackend } from './threads.ts';

export type BuiltinBackendEntry =
  | { readonly factory: ParallelBackendFactory }
  /** Loaded on first use: the module needs packages of an extra. */
  | { readonly load: () => Promise<ParallelBackendFactory> };

export const BUILTIN_BACKENDS: Readonly<Record<string, BuiltinBackendEntry>> = {
  threads: {
    factory: (config) =>
      new ThreadsBackend(config.nJobs, config.maxWorkerMemoryMb, config.maxNbytes, config.recycling),
  },
  processes: {
    factory: (config) =>
      new ProcessesBackend(config.nJobs, config.maxWorkerMemoryMb, config.maxNbytes, config.recycling),
  },
  sequential: { factory: () => new SequentialBackend() },
  redis: {
    load: async () => (await importExtra('redis', () => import('./redis/factory.ts'))).redisBackendFactory,
  },
};
