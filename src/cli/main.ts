#!/usr/bin/env node
/** Entry point of the `joblib-ts` executable (package `bin`): parses argv and runs the subcommand. */
import { createProgram } from './program.ts';

try {
  await createProgram().parseAsync(process.argv);
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`joblib-ts: ${message}\n`);
  if (process.env.JOBLIB_TS_DEBUG && error instanceof Error && error.stack)
    process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
}
