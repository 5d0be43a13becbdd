/**
 * Ctrl-C during a run: stop every worker, say so in one line, wait until every worker thread and child
 * process has exited (at most 2 s, then SIGKILL what is left), and exit with 130 as Node programs do, so
 * that nothing of ours outlives the program. A program with its own SIGINT handler keeps control: its
 * runs reject with `InterruptedError` and clean up, and the program decides what happens next.
 */
import { InterruptedError } from './errors.ts';

export interface InterruptibleRun {
  /**
   * Stops the run at once (terminating its workers) and rejects it with `error`; when `exiting`, leaves
   * it unsettled instead: the program is about to exit, and a rejection would end it first, with code 1.
   */
  interrupt(error: InterruptedError, exiting: boolean): void;
  /** How far it got, for the one line printed (undefined when the run is not verbose). */
  progressLine(): string | undefined;
}

/** How long Ctrl-C waits for workers to exit before killing what is left and exiting anyway. */
const EXIT_WAIT_MS = 2000;

const active = new Set<InterruptibleRun>();
const stopHooks = new Set<() => Promise<void> | void>();
const killHooks = new Set<() => void>();

export interface InterruptExitHooks {
  /** Ends workers; settles when they have exited (awaited at most `EXIT_WAIT_MS`). */
  stop?(): Promise<void> | void;
  /** Runs after that wait, synchronously: ends by force what is still alive (SIGKILL). */
  kill?(): void;
}

/** What to do before exiting on Ctrl-C (the pools close their workers; processes kill stragglers). */
export function onInterruptExit(hooks: InterruptExitHooks): void {
  if (hooks.stop) stopHooks.add(hooks.stop);
  if (hooks.kill) killHooks.add(hooks.kill);
}

function handleSigint(): void {
  const programHandlesIt = process.listenerCount('SIGINT') > 1;
  const runs = [...active];
  const lines = runs.map((run) => run.progressLine()).filter((line): line is string => !!line);
  const error = new InterruptedError(
    'The Parallel run was interrupted by Ctrl-C (SIGINT); its workers were stopped.',
  );
  for (const run of runs) run.interrupt(error, !programHandlesIt);
  if (programHandlesIt) return;
  process.stderr.write(`${lines.length > 0 ? lines.join('\n') : `joblib-ts: ${error.message}`}\n`);
  void exitWhenWorkersAreGone();
}

async function exitWhenWorkersAreGone(): Promise<void> {
  let skipWait: () => void = () => {};
  // A ref'd timer: it also keeps the program alive while it waits, whatever else has ended.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    skipWait = resolve;
    timer = setTimeout(resolve, EXIT_WAIT_MS);
  });
  // Ctrl-C again: stop waiting (without this listener, it would kill the program before its children).
  process.on('SIGINT', skipWait);
  const stopped = Promise.allSettled([...stopHooks].map(async (stop) => stop()));
  await Promise.race([stopped, deadline]);
  clearTimeout(timer);
  for (const kill of killHooks) {
    try {
      kill();
    } catch {
      // Exiting anyway: one hook failing must not keep the others from running.
    }
  }
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
