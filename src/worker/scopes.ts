/**
 * The worker's side of `taskContext()` and `workerContext()`: each task's scope (index, attempt, seed,
 * signal, report), each run's abort controller, and each call configuration's initializer result.
 */
import { flushOutput } from '../context/console-capture.ts';
import { type BatchSource, runInScope, type SetupScope, TaskScope } from '../context/task-context.ts';
import type { AnyFunction } from '../delayed.ts';
import { isThenable } from '../values.ts';
import type { BatchMessage } from '../wire/protocol.ts';

/** Runs (by id) whose signals exist here; older ones are dropped past this many. */
const RUNS_KEPT = 256;

/** The initializer threw: the batch fails with its error, marked as the initializer's. */
export class InitializerFailure {
  constructor(readonly error: unknown) {}
}

export class WorkerScopes {
  private readonly runs = new Map<number, AbortController>();
  /** Each initializer key's result (or its failure, forgotten so that a later run tries again). */
  private readonly inits = new Map<string, Promise<unknown>>();
  /** The timeout signal a task was handed, when it asked for its signal in a run with `timeoutMs`. */
  private readonly timeouts = new WeakMap<TaskScope, AbortSignal>();

  constructor(private readonly report: (message: BatchMessage, at: number, value: unknown) => void) {}

  /** The run was cancelled or aborted: its tasks' signals abort. */
  cancel(run: number): void {
    const controller = this.controller(run);
    if (!controller.signal.aborted)
      controller.abort(new Error('joblib-ts: the run was stopped (aborted, or another task failed).'));
  }

  private controller(run: number): AbortController {
    let controller = this.runs.get(run);
    if (!controller) {
      controller = new AbortController();
      this.runs.set(run, controller);
      if (this.runs.size > RUNS_KEPT) this.runs.delete(this.runs.keys().next().value as number);
    }
    return controller;
  }

  /**
   * What the batch's initializer returned in this worker, running it first if this worker has not for
   * its key (undefined when the batch has none). Rejects with an `InitializerFailure`.
   */
  setup(message: BatchMessage, resolve: (id: number) => Promise<AnyFunction>): Promise<unknown> | undefined {
    const { init } = message;
    if (!init) return undefined;
    let result = this.inits.get(init.key);
    if (!result) {
      result = (async () => {
        const fn = await resolve(init.fn);
        const scope: SetupScope = { setup: true, batch: message.id };
        try {
          let value = runInScope(scope, () => fn(...init.args));
          if (isThenable(value)) value = await value;
          return value;
        } catch (error) {
          throw new InitializerFailure(error);
        } finally {
          flushOutput(scope);
        }
      })();
      this.inits.set(init.key, result);
      result.catch(() => this.inits.delete(init.key));
    }
    return result;
  }

  /** The scope task `at` of the batch runs in. */
  /** Whether the task's signal aborted because it ran past the run's timeoutMs. */
  timedOut(scope: TaskScope): boolean {
    return this.timeouts.get(scope)?.aborted === true;
  }

  /** What the batch's tasks share; `task(at)` then makes each one's scope. */
  batch(message: BatchMessage, workerContext: unknown): BatchScopes {
    return new BatchScopes(this, message, workerContext);
  }

  /** The signal of a task of `message`, which started at `startedAt` (for the run's timeout). */
  signal(message: BatchMessage, scope: TaskScope, startedAt: number): AbortSignal {
    const signal = this.controller(message.run).signal;
    const { timeout } = message;
    if (timeout === undefined) return signal;
    const left = Math.max(0, Math.ceil(timeout - (performance.now() - startedAt)));
    const timer = AbortSignal.timeout(left);
    this.timeouts.set(scope, timer);
    return AbortSignal.any([signal, timer]);
  }

  sendReport(message: BatchMessage, at: number, value: unknown): void {
    this.report(message, at, value);
  }
}

/** One batch's side of its tasks' scopes. */
export class BatchScopes implements BatchSource {
  readonly runSeed: number;
  readonly attempt: number;
  readonly batch: number;
  private readonly first: number;
  /** When each task started, for the timeout of its signal (only with a timeout). */
  private readonly started: Map<TaskScope, number> | undefined;

  constructor(
    private readonly owner: WorkerScopes,
    private readonly message: BatchMessage,
    readonly workerContext: unknown,
  ) {
    this.runSeed = message.seed ?? 0;
    this.attempt = message.attempt ?? 1;
    this.batch = message.id;
    this.first = message.first ?? 0;
    this.started = message.timeout === undefined ? undefined : new Map();
  }

  task(at: number): TaskScope {
    const scope = new TaskScope(this, at, this.first + at);
    this.started?.set(scope, performance.now());
    return scope;
  }

  signal(scope: TaskScope): AbortSignal {
    return this.owner.signal(this.message, scope, this.started?.get(scope) ?? performance.now());
  }

  report(scope: TaskScope, value: unknown): void {
    this.owner.sendReport(this.message, scope.at, value);
  }
}
