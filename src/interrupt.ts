/**
 * Ctrl-C during a run: stop every worker, say so in one line, and exit with 130 as Node programs do,
 * leaving no child process behind. A program with its own SIGINT handler keeps control: its runs
 * reject with `InterruptedError` and clean up, and the program decides what happens next.
 */
import { InterruptedError } from './errors.ts';

export interface InterruptibleRun {
  /** Stops the run at once (terminating its workers) and rejects it with `error`. */
  interrupt(error: InterruptedError): void;
  /** How far it got, for the one line printed (undefined when the run is not verbose). */
  progressLine(): string | undefined;
}

const active = new Set<InterruptibleRun>();
const exitHooks = new Set<() => void>();

/** Something to do synchronously before exiting on Ctrl-C (the processes backend kills its children). */
export function onInterruptExit(hook: () => void): void {
  exitHooks.add(hook);
}

function handleSigint(): void {
  const programHandlesIt = process.listenerCount('SIGINT') > 1;
  const runs = [...active];
  const lines = runs.map((run) => run.progressLine()).filter((line): line is string => !!line);
  const error = new InterruptedError(
    'The Parallel run was interrupted by Ctrl-C (SIGINT); its workers were stopped.',
  );
  for (const run of runs) run.interrupt(error);
  if (programHandlesIt) return;
  for (const hook of exitHooks) hook();
  process.stderr.write(`${lines.length > 0 ? lines.join('\n') : `joblib-ts: ${error.message}`}\n`);
  process.exit(130);
}

/** Watches for Ctrl-C while the run is active; returns the function to call when it ends. */
export function watchInterrupts(run: InterruptibleRun): () => void {
  if (active.size === 0) process.on('SIGINT', handleSigint);
  active.add(run);
  return () => {
    if (!active.delete(run)) return;
    if (active.size === 0) process.off('SIGINT', handleSigint);
  };
}
