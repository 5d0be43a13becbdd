/**
 * Prints the lines workers wrote, as the `logs` option says, from the run's `log` events: as written
 * (`inherit`), prefixed with the task's index (`tagged`), or not at all (`silent`); above a live
 * progress bar, never through it.
 */
import type { JoblibEventOf } from '../events.ts';
import type { LogsMode } from '../options.ts';
import type { ProgressReporter } from './bar.ts';

export type LogPrinter = (event: JoblibEventOf<'log'>) => void;

/** `[task 12] ` before a task's line; `[worker] ` before what an initializer wrote. */
export function logPrefix(index: number | undefined): string {
  return index === undefined ? '[worker] ' : `[task ${index}] `;
}

export function createLogPrinter(mode: LogsMode, bar: ProgressReporter | undefined): LogPrinter | undefined {
  if (mode === 'silent') return undefined;
  const tagged = mode === 'tagged';
  return (event) => {
    const text = `${tagged ? logPrefix(event.index) : ''}${event.line}\n`;
    const write = () => process[event.stream].write(text);
    if (bar?.printAbove) bar.printAbove(write);
    else write();
  };
}
