/**
 * What a run does with a failed task when it does not simply fail (settled mode, retries): the task's
 * failure is its own, the other tasks of its batch keep their results or run again, and the task
 * runs again while its retries last. The dispatcher calls it with each outcome of a batch whose
 * tasks kept going; it answers through `RecoveryHost`.
 */
import type { BackendBatch, BatchOutcome, TaskFailure } from '../backends/backend.ts';
import { attachTaskInfo, TimeoutError, WorkerCrashedError } from '../errors.ts';
import type { EventHub } from '../events.ts';
import { markAttempts, nextRetry, type RetryPolicy } from './retry.ts';

/** What the run lets recovery do. */
export interface RecoveryHost {
  readonly runId: number;
  readonly events: EventHub | undefined;
  /** The run records failures as entries (`'settled'`) instead of failing. */
  readonly settled: boolean;
  /** Stores the results of tasks `firstIndex...` (values, not entries). */
  deliver(firstIndex: number, results: readonly unknown[]): void;
  /** Stores task `index`'s final failure (settled mode). */
  deliverFailure(index: number, error: unknown): void;
  /** Runs these tasks again (not counted as newly dispatched). */
  resubmit(batch: BackendBatch): void;
  /** Holds the run open while a retry waits for its delay; `release` when it is resubmitted or dropped. */
  hold(): void;
  release(): void;
  /** Whether the run has settled (a retry due then is dropped). */
  readonly done: boolean;
  /** Fails the run with `error`. */
  fail(error: unknown): void;
  /** Finds which task's argument could not be sent, after a send failed. */
  findUnsendable(batch: BackendBatch, error: unknown): { taskIndex: number; error: Error } | undefined;
}

/** Tasks `from` to `to` (excluded) of `batch`, as a batch of their own. */
export function sliceBatch(batch: BackendBatch, from: number, to: number): BackendBatch {
  const part: { -readonly [K in keyof BackendBatch]: BackendBatch[K] } = {
    ...batch,
    firstIndex: batch.firstIndex + from,
    fns: batch.fns.slice(from, to),
    locations: batch.locations.slice(from, to),
    args: batch.args.slice(from, to),
  };
  return part;
}

export class TaskRecovery {
  /** Attempts so far of tasks that failed at least once, by input index. */
  private readonly attempts = new Map<number, number>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly host: RecoveryHost,
    private readonly policy: RetryPolicy | undefined,
  ) {}

  /** An outcome of a batch that kept going (or of a backend that stopped at its first failure). */
  outcome(batch: BackendBatch, outcome: Exclude<BatchOutcome, { ok: 'cancelled' }>): void {
    const size = batch.fns.length;
    if (outcome.ok === true) {
      this.deliverAround(batch, 0, outcome.results, outcome.failures);
      // A worker stopped early to be replaced (maxWorkerRssMb): the rest runs elsewhere.
      if (outcome.results.length < size) this.host.resubmit(sliceBatch(batch, outcome.results.length, size));
      return;
    }
    const at = outcome.failedAt;
    if (outcome.results) this.deliverAround(batch, 0, outcome.results, outcome.failures);
    // The tasks before it ran, but their results were lost with their worker: they run again.
    else if (at > 0) this.host.resubmit(sliceBatch(batch, 0, at));
    // The task's own failure first: in fail-fast mode it ends the run, and nothing more is sent.
    this.taskFailed(batch, at, outcome.error);
    if (at + 1 < size && !this.host.done) this.host.resubmit(sliceBatch(batch, at + 1, size));
  }

  /** A batch that could not run at all: a task's argument could not be sent, or its worker died. */
  batchError(batch: BackendBatch, error: unknown): void {
    const size = batch.fns.length;
    const unsendable = this.host.findUnsendable(batch, error);
    if (unsendable) {
      const at = unsendable.taskIndex - batch.firstIndex;
      if (at > 0) this.host.resubmit(sliceBatch(batch, 0, at));
      this.taskFailed(batch, at, unsendable.error);
      if (at + 1 < size && !this.host.done) this.host.resubmit(sliceBatch(batch, at + 1, size));
      return;
    }
    if (!(error instanceof WorkerCrashedError || error instanceof TimeoutError)) {
      this.host.fail(error);
      return;
    }
    if (size === 1) {
      this.taskFailed(batch, 0, error);
      return;
    }
    // A crash that could not be pinned on one task of the batch: each runs again alone, so that the
    // next crash names its task.
    for (let i = 0; i < size; i++) this.host.resubmit(sliceBatch(batch, i, i + 1));
  }

  /** The attempt task `index` is on (1 until it has failed once): for 'task-done' events. */
  attemptOf(index: number): number {
    return this.attempts.get(index) ?? 1;
  }

  /** Stops the retries still waiting for their delay (the run has settled). */
  dispose(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Delivers `results` (tasks `from...` of the batch), less the failed ones, which fail on their own. */
  private deliverAround(
    batch: BackendBatch,
    from: number,
    results: readonly unknown[],
    failures: readonly TaskFailure[] | undefined,
  ): void {
    if (!failures || failures.length === 0) {
      this.host.deliver(batch.firstIndex + from, results);
      return;
    }
    let start = 0;
    for (const failure of failures) {
      if (failure.at > start)
        this.host.deliver(batch.firstIndex + from + start, results.slice(start, failure.at));
      start = failure.at + 1;
    }
    if (start < results.length) this.host.deliver(batch.firstIndex + from + start, results.slice(start));
    for (const failure of failures) {
      if (this.host.done) return;
      this.taskFailed(batch, from + failure.at, failure.error);
    }
  }

  /** Task `at` of `batch` failed: it runs again if its retries allow, else it fails for good. */
  private taskFailed(batch: BackendBatch, at: number, thrown: unknown): void {
    const host = this.host;
    if (host.done) return;
    const index = batch.firstIndex + at;
    const attempt = this.attempts.get(index) ?? 1;
    const functionName = batch.locations[at]?.name ?? batch.fns[at]?.name ?? 'task';
    const error = attachTaskInfo(thrown, { taskIndex: index, functionName });
    const retry = nextRetry(this.policy, error, attempt);
    host.events?.emit({
      type: 'task-failed',
      runId: host.runId,
      index,
      attempt,
      error,
      willRetry: retry !== undefined,
    });
    if (!retry) {
      this.attempts.delete(index);
      if (this.policy) markAttempts(error, attempt);
      if (host.settled) host.deliverFailure(index, error);
      else host.fail(error);
      return;
    }
    this.attempts.set(index, attempt + 1);
    host.events?.emit({
      type: 'task-retried',
      runId: host.runId,
      index,
      attempt: attempt + 1,
      delayMs: retry.delayMs,
    });
    const again: BackendBatch = {
      ...sliceBatch(batch, at, at + 1),
      attempt: attempt + 1,
      // Its worker died or was stopped with it: the next attempt starts clean on a new one.
      ...(error instanceof WorkerCrashedError || error instanceof TimeoutError
        ? { freshWorker: true as const }
        : {}),
    };
    if (retry.delayMs <= 0) {
      host.resubmit(again);
      return;
    }
    host.hold();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      // Sent before the hold ends, so that the run never looks finished in between.
      if (!host.done) host.resubmit(again);
      host.release();
    }, retry.delayMs);
    this.timers.add(timer);
  }
}
