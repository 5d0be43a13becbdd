/**
 * The `joblib-ts` command line: one subcommand per file, registered here: `experiment` (the seed's
 * timing experiment) and `worker` (a Redis worker).
 */
import { Command } from 'commander';
import { packageVersion } from '../package-info.ts';
import { experimentCommand } from './experiment.ts';
import { workerCommand } from './worker.ts';

export function createProgram(): Command {
  return new Command('joblib-ts')
    .description("Python's joblib for TypeScript on Node.js: parallel for loops, progress, and a disk cache.")
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .addCommand(experimentCommand())
    .addCommand(workerCommand());
}
