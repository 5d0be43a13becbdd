/**
 * `joblib-ts/redis`: the Redis backend's classes, errors and option types, for users who drive a
 * `RedisWorker` from code or catch its errors. `new Parallel({ backend: 'redis' })` needs no import of
 * this module: the registry loads the backend on first use. Options come from `backendOptions`, else
 * from `REDIS_URL`.
 */

export { RedisBackend } from './backend.ts';
export {
  CodeRefusedError,
  ModuleRefusedError,
  NoRedisWorkerError,
  RedisBackendError,
  VersionSkewError,
} from './errors.ts';
export { redisBackendFactory } from './factory.ts';
export type { LiveWorkers } from './liveness.ts';
export { type RedisStoreOptions, redisStore } from './memory-store.ts';
export type { RedisBackendOptions, RedisConnection, RedisQueueOptions } from './options.ts';
export { redactUrl } from './options.ts';
export type { RedisWorkerOptions, WorkerInfo } from './worker.ts';
export { RedisWorker } from './worker.ts';
