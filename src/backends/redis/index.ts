/**
 * The `redis` backend: importing this module registers it, so that
 * `new Parallel({ backend: 'redis', nJobs: -1 })` sends batches to `joblib-ts worker` processes through
 * Redis (BullMQ). Options come from `backendOptions` (when Parallel passes them to the factory as
 * `config.options`), else from `configureRedisBackend()`, else from `REDIS_URL`.
 */
import { type BackendConfig, registerParallelBackend } from '../backend.ts';
import { RedisBackend } from './backend.ts';
import type { RedisBackendOptions } from './options.ts';

export type { LiveWorkers } from './backend.ts';
export { RedisBackend } from './backend.ts';
export { ModuleRefusedError, NoRedisWorkerError, RedisBackendError, VersionSkewError } from './errors.ts';
export type { RedisBackendOptions, RedisConnection, RedisQueueOptions } from './options.ts';
export { redactUrl } from './options.ts';
export type { RedisWorkerOptions, WorkerInfo } from './worker.ts';
export { RedisWorker } from './worker.ts';

let defaults: RedisBackendOptions = {};

/** Options for every `backend: 'redis'` Parallel created afterwards (until backendOptions reach the factory). */
export function configureRedisBackend(options: RedisBackendOptions): void {
  defaults = { ...options };
}

export function redisBackendFactory(config: BackendConfig): RedisBackend {
  const extra = (config as BackendConfig & { options?: RedisBackendOptions }).options;
  return new RedisBackend({ ...defaults, ...(extra ?? {}) }, config.nJobs);
}

registerParallelBackend('redis', redisBackendFactory);
