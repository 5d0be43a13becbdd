/**
 * The package's CommonJS entry: `require('joblib-ts')`, for CommonJS programs and for kernels that load
 * modules with `require` (tslab, Jupyter's TypeScript kernel). The package itself is an ES module with
 * no top-level `await`, so Node's `require(esm)` (Node 20.19+, 22.12+) loads it: this is the same module
 * instance as `import`'s, not a second copy. On an older Node, the error says what to do.
 */
import type * as JoblibTs from './index.js';

import requireEsm = require('./require-esm.cjs');

export = requireEsm<typeof JoblibTs>(() => require('./index.js'), 'joblib-ts');
