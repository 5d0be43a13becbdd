/**
 * The worker side, shared by thread and process workers: import each task's module once, call the
 * export, and answer with the results or the first error.
 */
import { getHeapStatistics } from 'node:v8';
import { flushOutput } from '../context/console-capture.ts';
import { runInScope } from '../context/task-context.ts';
import type { AnyFunction } from '../delayed.ts';
import { serializeThrown } from '../errors.ts';
import { sourceHash } from '../locate/source-hash.ts';
import { beginTaskModuleImport, endTaskModuleImport } from '../main-guard.ts';
import { isTypeScriptUrl, registerTsx, tsxActiveInThisThread } from '../tsx.ts';
import { isThenable } from '../values.ts';
import { unclonableReason } from '../wire/clonable.ts';
import type { FunctionRef, ValueRef } from '../wire/function-ref.ts';
import { callPacked, packResults } from '../wire/packed-numbers.ts';
import type { BatchMessage, FailedTask, FromWorker, MemoryReport, WorkerInit } from '../wire/protocol.ts';
import { decodeTags, encodeTags, needsTags, type TagHooks, tagIds } from '../wire/tagged.ts';
import { compileCode, instantiate } from './by-value.ts';
import { type BatchScopes, InitializerFailure, WorkerScopes } from './scopes.ts';
import { SpillReader } from './spill-reader.ts';
import { runAsTask } from './task-context.ts';

export interface ExecutorOptions {
  init: WorkerInit;
  isCancelled: (run: number) => boolean;
  /** Processes only: give the event loop a turn this often (ms) so that cancel messages get in. */
  yieldEveryMs?: number;
  /** Called before each task with the batch and the task's position (for timeouts and crash reports). */
  onTaskStart?: (message: BatchMessage, at: number) => void;
  /** Sends a message to the caller now, ahead of the batch's answer (`taskContext().report`). */
  send?: (message: FromWorker) => void;
}

/** Thrown by `runTask` for a task that stopped on its timeout signal (not the task's own error). */
const TASK_TIMED_OUT = Symbol('task timed out');

/** The resident memory as last read, and when (reading it costs about 30 µs: at most every 100 ms). */
let lastRss = 0;
let rssReadAt = Number.NEGATIVE_INFINITY;

/**
 * This worker's resident memory and its own heap in use, for `maxWorkerRssMb` and crash reports.
 * `fresh`: read the resident memory now (the pool compares it with `maxWorkerRssMb`).
 */
function memoryReport(fresh = false): MemoryReport {
  const now = performance.now();
  if (fresh || now - rssReadAt > 100) {
    lastRss = process.memoryUsage.rss();
    rssReadAt = now;
  }
  return [lastRss, getHeapStatistics().used_heap_size];
}

function canClone(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

class ImportFailure {
  constructor(
    readonly url: string,
    readonly error: unknown,
  ) {}
}

export class TaskExecutor {
  private readonly refs = new Map<number, FunctionRef>();
  /** Definitions resolved so far: functions, classes, modules. */
  private readonly values = new Map<number, unknown>();
  private readonly functions = new Map<number, AnyFunction>();
  /** The definition id of each function and class resolved here: instances of them go back with their class. */
  private readonly classIds = new Map<unknown, number>();
  private readonly modules = new Map<string, Promise<Record<string, unknown>>>();
  private readonly spills = new SpillReader();
  private readonly lookup = (id: number): unknown => this.values.get(id);
  private readonly resultHooks: TagHooks = {
    ref: () => undefined,
    instance: (value) =>
      this.classIds.get((Object.getPrototypeOf(value) as { constructor?: unknown }).constructor),
  };

  /** Task scopes (`taskContext()`), run signals and initializer results. */
  readonly scopes = new WorkerScopes((message, at, value) =>
    this.options.send?.({ t: 'report', id: message.id, at, value }),
  );

  constructor(private readonly options: ExecutorOptions) {}

  /**
   * Learns definitions, compiles code sent by value and starts importing modules without waiting, so
   * that every worker is ready at once rather than when its first batch arrives. A failure here is
   * reported by the batch that needs it.
   */
  prefetch(defs: [number, FunctionRef][]): void {
    for (const [id, ref] of defs) {
      this.refs.set(id, ref);
      if (ref.kind === 'module') this.importModule(ref.url).catch(() => {});
      else if (ref.kind === 'value' && typeof ref.code !== 'string') {
        try {
          compileCode(ref.code);
        } catch {
          // Reported by the batch that needs it.
        }
      }
    }
  }

  /** Drops the definitions of a run that has ended (functions sent by value are one run's snapshot). */
  private forget(ids: readonly number[]): void {
    for (const id of ids) {
      this.refs.delete(id);
      this.functions.delete(id);
      if (this.values.has(id)) {
        this.classIds.delete(this.values.get(id));
        this.values.delete(id);
      }
    }
  }

  /** The batch in progress with `keep`: what its finished tasks gave, for `partial()` on the way out. */
  private keeping: { id: number; results: unknown[]; failed: FailedTask[]; done: number } | undefined;

  /**
   * The worker is dying in the middle of a batch with `keep`: the results of the tasks it finished,
   * to send on its way out (undefined when there are none, or they cannot be sent).
   */
  partial(): Extract<FromWorker, { t: 'partial' }> | undefined {
    const keeping = this.keeping;
    if (!keeping || keeping.done === 0) return undefined;
    const results = keeping.results.slice(0, keeping.done);
    if (!results.every((r) => unclonableReason(r) === undefined && canClone(r))) return undefined;
    const failed = keeping.failed.filter((f) => f.at < keeping.done);
    return { t: 'partial', id: keeping.id, results, ...(failed.length > 0 ? { failed } : {}) };
  }

  async runBatch(message: BatchMessage): Promise<FromWorker> {
    const reply = await this.runTasks(message);
    this.keeping = undefined;
    if (reply.t === 'done' || reply.t === 'fail') reply.mem = memoryReport(message.maxRss !== undefined);
    return reply;
  }

  private async runTasks(message: BatchMessage): Promise<FromWorker> {
    if (message.forget) this.forget(message.forget);
    if (message.defs) for (const [id, ref] of message.defs) this.refs.set(id, ref);
    const { id, run, packed, keep, maxRss } = message;
    let { args } = message;
    let count = packed ? packed.count : args.length;
    const results: unknown[] = new Array(count);
    const failed: FailedTask[] = [];
    if (keep) this.keeping = { id, results, failed, done: 0 };
    const { isCancelled, yieldEveryMs, onTaskStart } = this.options;
    let lastYield = yieldEveryMs ? performance.now() : 0;
    let i = 0;
    try {
      if (message.enc) {
        // Arguments with functions or class instances in them: resolve what they name, then rebuild them.
        for (const dep of tagIds(args)) await this.resolveValue(dep);
        args = args.map((list) => decodeTags(list, this.lookup) as unknown[]);
      }
      const setup = this.scopes.setup(message, (fnId) => this.resolve(fnId));
      const scopes = this.scopes.batch(message, setup ? await setup : undefined);
      for (; i < count; i++) {
        if (isCancelled(run)) return { t: 'cancelled', id, completed: i };
        try {
          results[i] = await this.runTask(message, args, i, onTaskStart, scopes);
        } catch (thrown) {
          // Kept going: the failure is this task's alone, the batch goes on.
          if (!keep) throw thrown;
          results[i] = undefined;
          failed.push(this.failedTask(i, thrown));
        }
        if (this.keeping) this.keeping.done = i + 1;
        // Over its memory limit: answer what it has, and let the pool replace it (the rest runs elsewhere).
        if (maxRss !== undefined && i + 1 < count && process.memoryUsage.rss() > maxRss) {
          count = i + 1;
          results.length = count;
          break;
        }
        if (yieldEveryMs && performance.now() - lastYield > yieldEveryMs) {
          await new Promise((resolve) => setImmediate(resolve));
          lastYield = performance.now();
        }
      }
    } catch (thrown) {
      if (thrown instanceof InitializerFailure) {
        const error = serializeThrown(thrown.error, canClone);
        if (error.kind === 'error' && error.error.stack)
          error.error.stack = withoutOurFrames(error.error.stack);
        return { t: 'fail', id, at: 0, error, init: true };
      }
      return { t: 'fail', id, ...this.failedTask(i, thrown) };
    }
    // One turn of the event loop before answering: a rejection nobody handles, or a throw the tasks
    // scheduled at once, kills the worker now and fails the batch, instead of after it has resolved.
    await new Promise((resolve) => setImmediate(resolve));
    const numbers = failed.length === 0 ? packResults(results) : undefined;
    if (numbers) return { t: 'done', id, results: numbers };
    const withFailures = failed.length > 0 ? { failed } : {};
    if (this.classIds.size > 0 && needsTags(results, this.resultHooks)) {
      return {
        t: 'done',
        id,
        results: encodeTags(results, this.resultHooks) as unknown[],
        enc: true,
        ...withFailures,
      };
    }
    // A result that would arrive as a plain object without its class is refused, not sent.
    for (let r = 0; r < count; r++) {
      const reason = unclonableReason(results[r]);
      if (reason === undefined) continue;
      if (!keep) return this.unsendableResult(message, results, reason, r);
      results[r] = undefined;
      failed.push(this.unsendableFailure(r, reason));
    }
    if (failed.length > 0) failed.sort((a, b) => a.at - b.at);
    return { t: 'done', id, results, ...(failed.length > 0 ? { failed } : {}) };
  }

  /**
   * Runs task `at` of the batch in its scope (`taskContext()`, output capture), resolving its function
   * first (an import is not the task's time). Throws `TASK_TIMED_OUT` when it stopped because its signal
   * said it ran past the run's timeout, however it ended.
   */
  private async runTask(
    message: BatchMessage,
    args: unknown[][],
    at: number,
    onTaskStart: ExecutorOptions['onTaskStart'],
    scopes: BatchScopes,
  ): Promise<unknown> {
    const { id, run, packed } = message;
    const fnId = typeof message.fn === 'number' ? message.fn : (message.fn[at] as number);
    const fn = this.functions.get(fnId) ?? (await this.resolve(fnId));
    onTaskStart?.(message, at);
    const scope = scopes.task(at);
    let value: unknown;
    try {
      value = runInScope(scope, () =>
        runAsTask(id, at, () =>
          packed
            ? callPacked(fn, packed, at)
            : fn(
                ...(message.spilled
                  ? this.spills.restore(run, args[at] as unknown[])
                  : (args[at] as unknown[])),
              ),
        ),
      );
      if (isThenable(value)) value = await value;
    } catch (error) {
      if (!this.scopes.timedOut(scope)) throw error;
    } finally {
      flushOutput(scope);
    }
    if (this.scopes.timedOut(scope)) throw TASK_TIMED_OUT;
    return value;
  }

  /**
   * What a task threw, as it travels: an import failure names the module; a task stopped by its
   * timeout signal says so (the caller makes it a `TimeoutError`); our own frames are cut.
   */
  private failedTask(at: number, thrown: unknown): FailedTask {
    if (thrown === TASK_TIMED_OUT) return { at, error: serializeThrown(null, canClone), timedOut: true };
    if (thrown instanceof ImportFailure)
      return { at, error: serializeThrown(thrown.error, canClone), importUrl: thrown.url };
    const error = serializeThrown(thrown, canClone);
    if (error.kind === 'error' && error.error.stack) error.error.stack = withoutOurFrames(error.error.stack);
    return { at, error };
  }

  private unsendableFailure(at: number, error: unknown): FailedTask {
    const reason = error instanceof Error ? error.message : String(error);
    const wrapped = new TypeError(
      `The result of this task cannot be sent back to the caller (${reason}). Return plain data: numbers, strings, arrays, plain objects, typed arrays, Map, Set, Date, BigInt.`,
    );
    return { at, error: serializeThrown(wrapped, canClone), unsendableResult: true };
  }

  /**
   * The answer to send when `done` could not be sent: finds the first result that cannot travel (with
   * `keep`: every such result becomes its task's failure, and the others go).
   */
  unsendableResult(message: BatchMessage, results: unknown[], error: unknown, known?: number): FromWorker {
    if (message.keep && known === undefined) {
      const failed: FailedTask[] = [];
      const kept = results.map((r, at) => {
        if (canClone(r)) return r;
        failed.push(this.unsendableFailure(at, error));
        return undefined;
      });
      return { t: 'done', id: message.id, results: kept, failed, mem: memoryReport() };
    }
    const at =
      known ??
      Math.max(
        0,
        results.findIndex((r) => !canClone(r)),
      );
    return { t: 'fail', id: message.id, ...this.unsendableFailure(at, error), mem: memoryReport() };
  }

  /** A definition's value in this worker: imported, walked to, or compiled and bound to its captures. */
  private async resolveValue(id: number): Promise<unknown> {
    if (this.values.has(id)) return this.values.get(id);
    const ref = this.refs.get(id);
    if (!ref) throw new Error(`joblib-ts internal error: function #${id} was never defined in this worker.`);
    let value: unknown;
    if (ref.kind === 'global') {
      value = walk(globalThis, ref.path);
    } else if (ref.kind === 'module') {
      const namespace = await this.importModule(ref.url);
      value = walk(namespace, ref.path);
      // A CommonJS module seen through a loader may expose its exports only on `default`.
      if (typeof value !== 'function' && ref.path.length > 0 && ref.path[0] !== 'default')
        value = walk(namespace.default, ref.path);
    } else {
      return this.resolveByValue(id, ref);
    }
    this.values.set(id, value);
    if (typeof value === 'function') this.classIds.set(value, id);
    return value;
  }

  /**
   * Makes this run's copy of a function sent by value. It is registered before its captures are
   * resolved, so that a function that captures itself, or one that captures it back, finds it.
   */
  private async resolveByValue(id: number, ref: ValueRef): Promise<unknown> {
    const { code } = ref;
    if (typeof code !== 'string') compileCode(code);
    const instance = instantiate(typeof code === 'string' ? code : code.hash);
    let value = instance.bindFirst ? undefined : instance.make();
    if (!instance.bindFirst) {
      this.values.set(id, value);
      this.classIds.set(value, id);
    }
    try {
      const captures = [...ref.captures];
      for (const at of ref.tagged ?? []) {
        for (const dep of tagIds(captures[at])) await this.resolveValue(dep);
        captures[at] = decodeTags(captures[at], this.lookup);
      }
      instance.bind(captures);
      if (instance.bindFirst) {
        value = instance.make();
        this.values.set(id, value);
        this.classIds.set(value, id);
      }
    } catch (error) {
      this.values.delete(id);
      this.classIds.delete(value);
      throw error;
    }
    return value;
  }

  private async resolve(fnId: number): Promise<AnyFunction> {
    const ref = this.refs.get(fnId);
    if (!ref)
      throw new Error(`joblib-ts internal error: function #${fnId} was never defined in this worker.`);
    const target = await this.resolveValue(fnId);
    if (typeof target !== 'function' && ref.kind !== 'value') {
      const where = ref.kind === 'module' ? ref.url : 'globalThis';
      throw new ImportFailure(
        ref.kind === 'module' ? ref.url : 'globalThis',
        new TypeError(`${ref.path.join('.')} is not a function in ${where} as this worker loaded it.`),
      );
    }
    if (ref.kind === 'module' && ref.sourceHash && sourceHash(target as AnyFunction) !== ref.sourceHash) {
      throw new ImportFailure(
        ref.url,
        new TypeError(
          `The export ${ref.path.join('.')} of ${ref.url} is not the function the caller passed to delayed() (its source differs). Only functions exported at the top level of a module can run in a worker: export it under its own name.`,
        ),
      );
    }
    const fn = target as AnyFunction;
    this.functions.set(fnId, fn);
    return fn;
  }

  private importModule(url: string): Promise<Record<string, unknown>> {
    let loading = this.modules.get(url);
    if (!loading) {
      loading = this.load(url);
      this.modules.set(url, loading);
      // A failed import is not cached: the next batch reports the same error afresh.
      loading.catch(() => this.modules.delete(url));
    }
    return loading;
  }

  private async load(url: string): Promise<Record<string, unknown>> {
    const { tsxDirectory, sourceMaps } = this.options.init;
    beginTaskModuleImport();
    try {
      // Register before the first attempt: Node caches a failed import of a URL, so a retry would fail too.
      if (isTypeScriptUrl(url) && tsxDirectory && !tsxActiveInThisThread()) {
        await registerTsx(tsxDirectory);
        if (sourceMaps) process.setSourceMapsEnabled(true);
      }
      try {
        return (await import(url)) as Record<string, unknown>;
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION' && isTypeScriptUrl(url)) {
          throw new Error(
            `${url} is a TypeScript module and no TypeScript loader is available in the worker. Run the program under tsx (npm i -D tsx; npx tsx main.ts), or compile the task module to JavaScript.`,
            { cause: error },
          );
        }
        throw error;
      }
    } catch (error) {
      throw new ImportFailure(url, error);
    } finally {
      endTaskModuleImport();
    }
  }
}

/** The stack as the user wrote it: frames of joblib-ts's own worker loop say nothing about their code. */
function withoutOurFrames(stack: string): string {
  return stack
    .split('\n')
    .filter(
      (line) =>
        !/[\\/](src|dist)[\\/](worker|context)[\\/](executor|thread-entry|process-entry|task-context|scopes)\.[jt]s:/.test(
          line,
        ) && !line.includes('AsyncLocalStorage.run (node:async_hooks'),
    )
    .join('\n');
}

function walk(root: unknown, path: readonly string[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || value === undefined) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}
