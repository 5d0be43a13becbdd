#!/usr/bin/env node
/**
 * Standalone entry of the Redis worker command (the same as `joblib-ts worker`), for programs and tests
 * that start workers directly: `node dist/cli/worker-main.js --root . --redis URL`.
 */
import { scrub } from '../backends/redis/options.ts';
import { workerCommand } from './worker.ts';

try {
  await workerCommand().parseAsync(process.argv);
} catch (error) {
  process.stderr.write(
    `joblib-ts worker: ${scrub(error instanceof Error ? error.message : String(error))}\n`,
  );
  process.exitCode = 1;
}
// Stopped cleanly (or failed to start): leave even if a library left a handle open.
process.exit();
