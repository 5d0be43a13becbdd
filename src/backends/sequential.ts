import { isThenable } from '../values.ts';
import type { BackendBatch, BatchOutcome, ParallelBackend, TaskFailure } from './backend.ts';

/** Runs tasks one after another in the caller's thread, as a plain loop would (joblib's `n_jobs=1`). */
export class SequentialBackend implements ParallelBackend {
  readonly name = 'SequentialBackend';
  readonly concurrency = 1;
  readonly inProcess = true;
  private readonly cancelled = new Set<number>();

  async runBatch(batch: BackendBatch): Promise<BatchOutcome> {
    const { fns, args, runId } = batch;
    const results: unknown[] = new Array(fns.length);
    const failures: TaskFailure[] = [];
    for (let i = 0; i < fns.length; i++) {
      if (this.cancelled.has(runId)) return { ok: 'cancelled', completed: i };
      try {
        let value = (fns[i] as (...a: readonly unknown[]) => unknown)(...(args[i] as unknown[]));
        if (isThenable(value)) value = await value;
        results[i] = value;
      } catch (error) {
        // Settled mode, retries: the failure is this task's, the batch goes on.
        if (!batch.keepGoing) return { ok: false, failedAt: i, error };
        failures.push({ at: i, error });
      }
    }
    return failures.length > 0 ? { ok: true, results, failures } : { ok: true, results };
  }

  cancelRun(runId: number): void {
    this.cancelled.add(runId);
    if (this.cancelled.size > 1024) this.cancelled.delete(this.cancelled.values().next().value as number);
  }

  async close(): Promise<void> {}
}
