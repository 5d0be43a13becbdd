/**
 * The worker side, shared by thread and process workers: import each task's module once, call the
 * export, and answer with the results or the first error.
 */
import type { AnyFunction } from '../delayed.ts';
import { serializeThrown } from '../errors.ts';
import type { FunctionRef } from '../locate/index.ts';
import { sourceHash } from '../locate/source-hash.ts';
import { beginTaskModuleImport, endTaskModuleImport } from '../main-guard.ts';
import { isTypeScriptUrl, registerTsx, tsxActiveInThisThread } from '../tsx.ts';
import { isThenable } from '../values.ts';
import { unclonableReason } from '../wire/clonable.ts';
import { callPacked, packResults } from '../wire/packed-numbers.ts';
import type { BatchMessage, FromWorker, WorkerInit } from '../wire/protocol.ts';
import { SpillReader } from './spill-reader.ts';
import { runAsTask } from './task-context.ts';

export interface ExecutorOptions {
  init: WorkerInit;
  isCancelled: (run: number) => boolean;
  /** Processes only: give the event loop a turn this often (ms) so that cancel messages get in. */
  yieldEveryMs?: number;
  /** Called before each task with the batch and the task's position (for timeouts and crash reports). */
  onTaskStart?: (message: BatchMessage, at: number) => void;
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
  private readonly functions = new Map<number, AnyFunction>();
  private readonly modules = new Map<string, Promise<Record<string, unknown>>>();
  private readonly spills = new SpillReader();

  constructor(private readonly options: ExecutorOptions) {}

  /**
   * Learns function references and starts importing their modules without waiting, so that every
   * worker loads a task module at once rather than when its first batch arrives. An import that
   * fails here is reported by the batch that needs it.
   */
  prefetch(defs: [number, FunctionRef][]): void {
    for (const [id, ref] of defs) {
      this.refs.set(id, ref);
      if (ref.kind === 'module') this.importModule(ref.url).catch(() => {});
    }
  }

  async runBatch(message: BatchMessage): Promise<FromWorker> {
    if (message.defs) for (const [id, ref] of message.defs) this.refs.set(id, ref);
    const { id, run, args, packed } = message;
    const count = packed ? packed.count : args.length;
    const results: unknown[] = new Array(count);
    const { isCancelled, yieldEveryMs, onTaskStart } = this.options;
    let lastYield = yieldEveryMs ? performance.now() : 0;
    let i = 0;
    try {
      for (; i < count; i++) {
        if (isCancelled(run)) return { t: 'cancelled', id, completed: i };
        const fnId = typeof message.fn === 'number' ? message.fn : (message.fn[i] as number);
        const fn = this.functions.get(fnId) ?? (await this.resolve(fnId));
        // After the import: loading a module is not the task's own running time.
        onTaskStart?.(message, i);
        const at = i;
        let value = runAsTask(id, at, () =>
          packed
            ? callPacked(fn, packed, at)
            : fn(
                ...(message.spilled
                  ? this.spills.restore(run, args[at] as unknown[])
                  : (args[at] as unknown[])),
              ),
        );
        if (isThenable(value)) value = await value;
        results[i] = value;
        if (yieldEveryMs && performance.now() - lastYield > yieldEveryMs) {
          await new Promise((resolve) => setImmediate(resolve));
          lastYield = performance.now();
        }
      }
    } catch (thrown) {
      if (thrown instanceof ImportFailure) {
        return {
          t: 'fail',
          id,
          at: i,
          error: serializeThrown(thrown.error, canClone),
          importUrl: thrown.url,
        };
      }
      const error = serializeThrown(thrown, canClone);
      if (error.kind === 'error' && error.error.stack)
        error.error.stack = withoutOurFrames(error.error.stack);
      return { t: 'fail', id, at: i, error };
    }
    // One turn of the event loop before answering: a rejection nobody handles, or a throw the tasks
    // scheduled at once, kills the worker now and fails the batch, instead of after it has resolved.
    await new Promise((resolve) => setImmediate(resolve));
    const packedResults = packResults(results);
    if (!packedResults) {
      // A result that would arrive as a plain object without its class is refused, not sent.
      for (let r = 0; r < count; r++) {
        const reason = unclonableReason(results[r]);
        if (reason !== undefined) return this.unsendableResult(message, results, reason, r);
      }
    }
    return { t: 'done', id, results: packedResults ?? results };
  }

  /** The answer to send when `done` could not be sent: finds the first result that cannot travel. */
  unsendableResult(message: BatchMessage, results: unknown[], error: unknown, known?: number): FromWorker {
    const at =
      known ??
      Math.max(
        0,
        results.findIndex((r) => !canClone(r)),
      );
    const reason = error instanceof Error ? error.message : String(error);
    const wrapped = new TypeError(
      `The result of this task cannot be sent back to the caller (${reason}). Return plain data: numbers, strings, arrays, plain objects, typed arrays, Map, Set, Date, BigInt.`,
    );
    return {
      t: 'fail',
      id: message.id,
      at,
      error: serializeThrown(wrapped, canClone),
      unsendableResult: true,
    };
  }

  private async resolve(fnId: number): Promise<AnyFunction> {
    const ref = this.refs.get(fnId);
    if (!ref)
      throw new Error(`joblib-ts internal error: function #${fnId} was never defined in this worker.`);
    let target: unknown;
    if (ref.kind === 'global') {
      target = walk(globalThis, ref.path);
    } else {
      const namespace = await this.importModule(ref.url);
      target = walk(namespace, ref.path);
      // A CommonJS module seen through a loader may expose its exports only on `default`.
      if (typeof target !== 'function' && ref.path[0] !== 'default')
        target = walk(namespace.default, ref.path);
    }
    if (typeof target !== 'function') {
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
        !/[\\/](src|dist)[\\/]worker[\\/](executor|thread-entry|process-entry|task-context)\.[jt]s:/.test(
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
