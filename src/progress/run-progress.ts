/**
 * The progress bar of one run, fed by the run's events (`onEvent`'s stream): it counts the tasks done
 * (and those failed for good, in settled mode),
 * takes the total from `run-start`, and ends with `run-end`.
 */
import type { EventListener } from '../events.ts';
import type { ProgressReporter } from './bar.ts';

export function progressFromEvents(bar: ProgressReporter): EventListener {
  let total: number | undefined;
  let done = 0;
  return (event) => {
    // A task failed for good in settled mode is one less to wait for, as a task done is.
    if (event.type === 'task-done' || (event.type === 'task-failed' && !event.willRetry)) {
      done++;
      bar.update(done, total);
    } else if (event.type === 'run-start') {
      total = event.total;
    } else if (event.type === 'run-end') {
      // A stream's total is known at its end.
      if (event.status === 'done') bar.update(event.completed, event.completed);
      bar.finish(event.status);
    }
  };
}
