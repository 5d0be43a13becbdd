/**
 * `require('joblib-ts/redis')`: the CommonJS entry of the Redis backend's module, the same module
 * instance as `import`'s (see `../../index.cts`).
 */
import type * as JoblibTsRedis from './index.js';

import requireEsm = require('../../require-esm.cjs');

export = requireEsm<typeof JoblibTsRedis>(() => require('./index.js'), 'joblib-ts/redis');
