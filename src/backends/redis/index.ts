/**
 * The `redis` backend: importing this module registers it, so that
 * `new Parallel({ backend: 'redis', nJobs: -1 })` sends batches to `joblib-ts worker` processes through
 * Redis (BullMQ). Options come from `backendOptions` (Parallel passes them to the factory as
 * `config.options`), else from `REDIS_URL`.
 */
import { type BackendConfig, registerParallelBackend } from '../backend.ts';
import { RedisBackend } from './backend.ts';
import type { RedisBackendOptions } from './options.ts';

export { RedisBackend } from './backend.ts';
export { ModuleRefusedError, NoRedisWorkerError, RedisBackendError, VersionSkewError } from './errors.ts';
export type { LiveWorkers } from './liveness.ts';
export type { RedisBackendOptions, RedisConnection, RedisQueueOptions } from './options.ts';
export { redactUrl } from './options.ts';
export type { RedisWorkerOptions, WorkerInfo } from './worker.ts';
export { RedisWorker } from './worker.ts';

export function redisBackendFactory(config: BackendConfig): RedisBackend {
  const extra = (config as BackendConfig & { options?: RedisBackendOptions }).options;
  return new RedisBackend(extra ?? {}, config.nJobs);
}

registerParallelBackend('redis', redisBackendFactory);
