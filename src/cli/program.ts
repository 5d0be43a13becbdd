/**
 * The `joblib-ts` command line: one subcommand per file, registered here: `experiment` (the seed's
 * timing experiment) and `worker` (a Redis worker).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { experimentCommand } from './experiment.ts';
import { workerCommand } from './worker.ts';

function packageVersion(): string {
  // Two levels up from both src/cli/ and dist/cli/.
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const version = (pkg as { version?: unknown }).version;
  return typeof version === 'string' ? version : '0.0.0';
}

export function createProgram(): Command {
  return new Command('joblib-ts')
    .description("Python's joblib for TypeScript on Node.js: parallel for loops, progress, and a disk cache.")
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .addCommand(experimentCommand())
    .addCommand(workerCommand());
}
