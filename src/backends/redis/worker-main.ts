#!/usr/bin/env node
/**
 * Standalone entry of the Redis worker command (the same as `joblib-ts worker`), for programs and tests
 * that start workers directly: `node dist/backends/redis/worker-main.js --root . --redis URL`.
 */
import { workerCommand } from '../../cli/worker.ts';
import { scrub } from './options.ts';

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
