import { captureOutput, flushOutput } from '../context/console-capture.ts';
import { type BatchSource, runInScope, type SetupScope, TaskScope } from '../context/task-context.ts';
import { EventHub } from '../events.ts';
import { isThenable } from '../values.ts';
import type { BackendBatch, BatchOutcome, ParallelBackend, TaskFailure } from './backend.ts';

/** Batch ids of this thread's tasks, for the output capture (negative: never a worker's). */
let nextBatch = -1;

/** Where output written by tasks running in this thread goes: the hub of the backend running them. */
const hubs = new Map<number, { hub: EventHub; runId: number; firstIndex: number }>();

/** A line written by a task running here (negative batch ids), as a log event of its run. */
function emitLine(scope: TaskScope | SetupScope, stream: 'stdout' | 'stderr', line: string): boolean {
  if (scope.batch >= 0) return false; // a worker's task: the worker's own sink takes it
  const target = hubs.get(scope.batch);
  const index = scope instanceof TaskScope && target ? target.firstIndex + scope.at : undefined;
  const delivered = target?.hub.emit({ type: 'log', runId: target.runId, index, stream, line });
  if (!delivered) process[stream].write(`${line}\n`);
  return true;
}

/** Runs tasks one after another in the caller's thread, as a plain loop would (joblib's `n_jobs=1`). */
export class SequentialBackend implements ParallelBackend {
  readonly name = 'SequentialBackend';
  readonly concurrency = 1;
  readonly inProcess = true;
  readonly events = new EventHub();
  private readonly cancelled = new Set<number>();
  private readonly controllers = new Map<number, AbortController>();
  /** Each initializer key's result here: this thread is the one worker. */
  private readonly inits = new Map<string, Promise<unknown>>();

  async runBatch(batch: BackendBatch): Promise<BatchOutcome> {
    const { fns, args, runId } = batch;
    const results: unknown[] = new Array(fns.length);
    const failures: TaskFailure[] = [];
    const id = nextBatch--;
    hubs.set(id, { hub: this.events, runId, firstIndex: batch.firstIndex });
    captureOutput(emitLine);
    try {
      const source = this.source(batch, id, batch.init ? await this.setup(batch, id) : undefined);
      for (let i = 0; i < fns.length; i++) {
        if (this.cancelled.has(runId)) return { ok: 'cancelled', completed: i };
        const scope = new TaskScope(source, i, batch.firstIndex + i);
        try {
          let value = runInScope(scope, () =>
            (fns[i] as (...a: readonly unknown[]) => unknown)(...(args[i] as unknown[])),
          );
          if (isThenable(value)) value = await value;
          results[i] = value;
        } catch (error) {
          // Settled mode, retries: the failure is this task's, the batch goes on.
          if (!batch.keepGoing) return { ok: false, failedAt: i, error };
          failures.push({ at: i, error });
        } finally {
          flushOutput(scope);
        }
      }
    } finally {
      hubs.delete(id);
    }
    return failures.length > 0 ? { ok: true, results, failures } : { ok: true, results };
  }

  /** What the batch's tasks share: the run's seed, its signal, where reports go. */
  private source(batch: BackendBatch, id: number, workerContext: unknown): BatchSource {
    const { runId, firstIndex } = batch;
    const events = this.events;
    const signal = this.controller(runId).signal;
    return {
      runSeed: batch.seed ?? 0,
      attempt: batch.attempt ?? 1,
      batch: id,
      workerContext,
      signal: () => signal,
      report: (scope, value) => {
        events.emit({ type: 'report', runId, index: firstIndex + scope.at, value });
      },
    };
  }

  /** Runs the initializer once per key; its error rejects the batch (and so fails the run once). */
  private setup(batch: BackendBatch, id: number): Promise<unknown> {
    const init = batch.init as NonNullable<BackendBatch['init']>;
    let result = this.inits.get(init.key);
    if (!result) {
      const scope: SetupScope = { setup: true, batch: id };
      result = (async () => {
        try {
          let value = runInScope(scope, () =>
            (init.fn as (...a: readonly unknown[]) => unknown)(...init.args),
          );
          if (isThenable(value)) value = await value;
          return value;
        } finally {
          flushOutput(scope);
        }
      })();
      this.inits.set(init.key, result);
      result.catch(() => this.inits.delete(init.key));
    }
    return result;
  }

  private controller(runId: number): AbortController {
    let controller = this.controllers.get(runId);
    if (!controller) {
      controller = new AbortController();
      this.controllers.set(runId, controller);
      if (this.controllers.size > 256)
        this.controllers.delete(this.controllers.keys().next().value as number);
    }
    return controller;
  }

  cancelRun(runId: number): void {
    this.cancelled.add(runId);
    if (this.cancelled.size > 1024) this.cancelled.delete(this.cancelled.values().next().value as number);
    const controller = this.controller(runId);
    if (!controller.signal.aborted)
      controller.abort(new Error('joblib-ts: the run was stopped (aborted, or another task failed).'));
  }

  endRun(runId: number): void {
    this.controllers.delete(runId);
  }

  async close(): Promise<void> {}
}
