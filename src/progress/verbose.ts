/**
 * joblib's progress messages, same wording shape, numbers and frequency rule:
 *   [Parallel(nJobs=8)]: Using backend ThreadsBackend with 8 concurrent workers.
 *   [Parallel(nJobs=8)]: Done   4 tasks      | elapsed:    0.1s
 *   [Parallel(nJobs=8)]: Done  16 out of  16 | elapsed:    1.2s finished
 * Levels 1..10 print at quadratically spaced batches, above 10 every batch, and from 50 on to
 * stdout instead of stderr.
 */
import type { RunCounters } from '../dispatch/counters.ts';

/** The state of a run that the messages are computed from. */
/** `   1.2s` below a minute, ` 2.5min` above, as joblib's short time format. */
export function shortFormatTime(seconds: number): string {
  return seconds > 60 ? `${(seconds / 60).toFixed(1).padStart(4)}min` : ` ${seconds.toFixed(1).padStart(5)}s`;
}

/** True when the message for the `index`-th dispatched batch should be skipped at this level. */
export function skipAtVerbosity(index: number, verbose: number): boolean {
  if (!verbose) return true;
  if (verbose > 10) return false;
  if (index === 0) return false;
  const spacing = 0.5 * (11 - verbose) ** 2;
  return Math.floor(Math.sqrt((index + 1) / spacing)) === Math.floor(Math.sqrt(index / spacing));
}

const pad3 = (n: number): string => String(n).padStart(3);

export class VerboseReporter {
  private readonly write: (line: string) => void;
  private startedAt = performance.now();

  constructor(
    private readonly verbose: number,
    private readonly label: string,
    /** joblib's pre-dispatch amount, which shifts the "out of" messages so one lands when dispatching ends. */
    private readonly preDispatchAmount: number,
    write?: (line: string) => void,
  ) {
    const stream = verbose >= 50 ? process.stdout : process.stderr;
    this.write = write ?? ((line) => stream.write(line));
  }

  print(message: string): void {
    if (this.verbose) this.write(`[${this.label}]: ${message}\n`);
  }

  start(backendName: string, workers: number): void {
    this.startedAt = performance.now();
    this.print(`Using backend ${backendName} with ${workers} concurrent workers.`);
  }

  batchSizeChanged(tooFast: boolean, smoothedSeconds: number, batchSize: number): void {
    if (this.verbose >= 10) {
      this.print(
        `Batch computation too ${tooFast ? 'fast' : 'slow'} (${smoothedSeconds}s.) Setting batchSize=${batchSize}.`,
      );
    }
  }

  private printedFinished = false;

  /** Called when the run has completed: the "finished" line, unless the last batch already printed it. */
  finished(c: RunCounters): void {
    if (!this.verbose || this.printedFinished) return;
    this.printedFinished = true;
    const elapsed = (performance.now() - this.startedAt) / 1000;
    this.print(
      `Done ${pad3(c.completedTasks)} out of ${pad3(c.completedTasks)} | elapsed: ${shortFormatTime(elapsed)} finished`,
    );
  }

  /** Called after every completed batch. */
  progress(c: RunCounters): void {
    if (!this.verbose) return;
    if (c.inputExhausted && c.completedTasks === c.dispatchedTasks) {
      this.finished(c);
      return;
    }
    const elapsed = (performance.now() - this.startedAt) / 1000;
    if (!c.inputExhausted) {
      if (skipAtVerbosity(c.dispatchedBatches, this.verbose)) return;
      this.print(`Done ${pad3(c.completedTasks)} tasks      | elapsed: ${shortFormatTime(elapsed)}`);
      return;
    }
    const index = c.completedTasks;
    const total = c.dispatchedTasks;
    if (index !== 0) {
      // One message as soon as dispatching ends, then every `frequency` tasks.
      const cursor = total - index + 1 - this.preDispatchAmount;
      const frequency = Math.floor(total / this.verbose) + 1;
      const isLast = index + 1 === total;
      if (isLast || cursor % frequency !== 0) return;
    }
    const remaining = index === 0 ? 0 : (elapsed / index) * (total - index);
    this.print(
      `Done ${pad3(index)} out of ${pad3(total)} | elapsed: ${shortFormatTime(elapsed)} remaining: ${shortFormatTime(remaining)}`,
    );
  }
}
