/** How `backend: 'redis'` makes its backend; the registry loads this module on first use. */
import type { BackendConfig } from '../backend.ts';
import { RedisBackend } from './backend.ts';
import type { RedisBackendOptions } from './options.ts';

export function redisBackendFactory(config: BackendConfig): RedisBackend {
  return new RedisBackend((config.options ?? {}) as RedisBackendOptions, config.nJobs);
}
