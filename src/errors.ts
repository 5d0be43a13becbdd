/**
 * Every error joblib-ts raises itself, and the one pair of functions that carries a task's error
 * across a thread or process boundary and rebuilds it on the caller's side.
 */

/** Where a failed task came from; attached to every error that `run()` rejects with because of a task. */
export interface TaskFailureInfo {
  /** Position of the task in the input, counting from 0. */
  taskIndex: number;
  /** Name of the task's function (its export name when it came from a module). */
  functionName: string;
  /** With `retries`: how many times the task ran (set on the last attempt's error). */
  attempts?: number;
}

/**
 * What a worker's death or a timeout tells about it, on `WorkerCrashedError` and `TimeoutError`:
 * which task's arguments, how much memory the worker had, what it last wrote.
 */
export interface WorkerForensics {
  /** The task's arguments as `util.inspect` shows them, cut at about 200 characters. */
  readonly argsSummary?: string;
  /** The worker: `thread 3`, `process 12345`. */
  readonly worker?: string;
  /** The worker's highest resident memory as last reported (bytes; a thread reports its process's). */
  readonly peakRssBytes?: number;
  /** The worker's highest heap in use as last reported (bytes; a thread's own heap). */
  readonly peakHeapBytes?: number;
  /** Processes: the last lines the worker wrote on stderr. */
  readonly stderrTail?: readonly string[];
}

/** Base class of the errors joblib-ts raises itself (not the errors of user tasks, which keep their class). */
export class JoblibError extends Error {
  override name = 'JoblibError';
}

/** A function that a worker cannot import: a closure, a non-exported function, a class method, a bound function. */
export class UnreachableFunctionError extends JoblibError {
  override name = 'UnreachableFunctionError';
  constructor(
    message: string,
    readonly functionName: string,
    readonly location: string | undefined,
  ) {
    super(message);
  }
}

/**
 * A function sent by value uses a variable whose value cannot be copied to a worker (a socket, a stream,
 * a WeakMap, a Proxy...): refused before any task runs.
 */
export class UncapturableValueError extends UnreachableFunctionError {
  override name = 'UncapturableValueError';
  constructor(
    message: string,
    functionName: string,
    location: string | undefined,
    /** The captured variable, as the function names it (`client`), with the path to the bad part (`client.socket`). */
    readonly variable: string,
    /** What the value is: `a Socket`, `a WeakMap`. */
    readonly valueType: string,
  ) {
    super(message, functionName, location);
  }
}

/** An opt-in part of joblib-ts (the Redis backend, the experiment command) whose packages are not installed. */
export class MissingExtraError extends JoblibError {
  override name = 'MissingExtraError';
  constructor(
    message: string,
    /** Which extra: `'redis'` or `'experiment'`. */
    readonly extra: string,
    /** The command that installs it, e.g. `npm install bullmq@^6.7.0 ioredis@^5.11.1 msgpackr@^2.1.4`. */
    readonly installCommand: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The operating system's code of a failed file operation (`ENOSPC`, `EACCES`...), if `error` is one. */
export function systemErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** A failed write told in words, with the system's code: `no space left on the device (ENOSPC)`. */
export function describeWriteFailure(err: unknown): string {
  const code = systemErrorCode(err);
  const reason =
    code === 'ENOSPC' ? 'no space left on the device' : err instanceof Error ? err.message : String(err);
  return code && !reason.includes(code) ? `${reason} (${code})` : reason;
}

/** The program's entry file is needed by a worker but would run the whole program again there. */
export class MainGuardError extends JoblibError {
  override name = 'MainGuardError';
}

/** An argument of a task that cannot be copied to a worker (a function, a class instance with private state...). */
export class UnsendableArgumentError extends JoblibError implements TaskFailureInfo {
  override name = 'UnsendableArgumentError';
  constructor(
    message: string,
    readonly taskIndex: number,
    readonly functionName: string,
    readonly argumentIndex: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A task module that could not be imported in a worker (it threw, or it does not exist there). */
export class TaskImportError extends JoblibError {
  override name = 'TaskImportError';
  constructor(
    message: string,
    readonly moduleUrl: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * What `WorkerCrashedError` and `TimeoutError` share: a task whose worker died or was stopped, with what
 * that worker showed (its forensics, set only where known).
 */
export abstract class WorkerTaskError extends JoblibError implements TaskFailureInfo, WorkerForensics {
  abstract readonly taskIndex: number;
  abstract readonly functionName: string;
  /** With `retries`: how many times the task ran. */
  declare readonly attempts?: number;
  declare readonly argsSummary?: string;
  declare readonly worker?: string;
  declare readonly peakRssBytes?: number;
  declare readonly peakHeapBytes?: number;
  declare readonly stderrTail?: readonly string[];

  constructor(message: string, forensics: WorkerForensics) {
    super(message);
    for (const [key, value] of Object.entries(forensics))
      if (value !== undefined) Object.assign(this, { [key]: value });
  }
}

/** A worker thread or process died while it held tasks. */
export class WorkerCrashedError extends WorkerTaskError {
  override name = 'WorkerCrashedError';
  /**
   * What the worker process wrote on stderr as it died (V8's out-of-memory report, an uncaught
   * error): kept here rather than printed on top of this error.
   */
  readonly workerStderr?: string;
  constructor(
    message: string,
    readonly taskIndex: number,
    readonly functionName: string,
    readonly exitCode: number | null,
    readonly signal: string | null,
    details: { workerStderr?: string } & WorkerForensics = {},
  ) {
    const { workerStderr, ...forensics } = details;
    super(message, forensics);
    if (workerStderr !== undefined) this.workerStderr = workerStderr;
  }
}

/** A task ran longer than `timeoutMs`; its worker was terminated and replaced. */
export class TimeoutError extends WorkerTaskError {
  override name = 'TimeoutError';
  constructor(
    message: string,
    readonly taskIndex: number,
    readonly functionName: string,
    readonly timeoutMs: number,
    details: WorkerForensics = {},
  ) {
    super(message, details);
  }
}

/** A run stopped by Ctrl-C (SIGINT), in a program that handles SIGINT itself. */
export class InterruptedError extends JoblibError {
  override name = 'InterruptedError';
}

/** A bad option or argument given to the public API. */
export class InvalidArgumentError extends JoblibError {
  override name = 'InvalidArgumentError';
}

/** Builds the error for a bad argument: `name` says which, `expected` what it should have been. */
export function invalidArgument(name: string, expected: string, got: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${name} must be ${expected}; got ${describeValue(got)}.`);
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
  return ctor && ctor !== 'Object' ? `a ${ctor}` : 'an object';
}

// ---------------------------------------------------------------------------------------------
// Crossing a boundary
// ---------------------------------------------------------------------------------------------

/** A thrown value in a form that structured clone and V8 serialization both carry without loss. */
export type SerializedThrown =
  | { kind: 'error'; error: SerializedError }
  | { kind: 'value'; value: unknown; description: string };

export interface SerializedError {
  name: string;
  constructorName: string;
  message: string;
  stack: string | undefined;
  cause?: SerializedThrown;
  errors?: SerializedThrown[];
  /** Own enumerable fields other than the above (`code`, `details`...), each only if it can be cloned. */
  fields: Record<string, unknown>;
}

const RESERVED_FIELDS = new Set(['name', 'message', 'stack', 'cause', 'errors']);

/**
 * Turns anything a task threw into plain data. Never throws: a field that cannot be cloned is
 * replaced by its description rather than losing the whole error.
 */
export function serializeThrown(
  thrown: unknown,
  canClone: (v: unknown) => boolean,
  depth = 0,
): SerializedThrown {
  if (!(thrown instanceof Error) || depth > 8) {
    const value = canClone(thrown) ? thrown : describeValue(thrown);
    return { kind: 'value', value, description: describeValue(thrown) };
  }
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(thrown)) {
    if (RESERVED_FIELDS.has(key)) continue;
    const v = (thrown as unknown as Record<string, unknown>)[key];
    fields[key] = canClone(v) ? v : describeValue(v);
  }
  const error: SerializedError = {
    name: String(thrown.name),
    constructorName: thrown.constructor?.name ?? 'Error',
    message: String(thrown.message),
    stack: typeof thrown.stack === 'string' ? thrown.stack : undefined,
    fields,
  };
  if ('cause' in thrown) error.cause = serializeThrown(thrown.cause, canClone, depth + 1);
  if (thrown instanceof AggregateError && Array.isArray(thrown.errors)) {
    error.errors = thrown.errors.map((e: unknown) => serializeThrown(e, canClone, depth + 1));
  }
  return { kind: 'error', error };
}

type ErrorClass = new (message?: string) => Error;

const BUILTIN_ERRORS: Record<string, ErrorClass> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
  AggregateError: AggregateError as unknown as ErrorClass,
};

const syntheticClasses = new Map<string, ErrorClass>();

/**
 * A stand-in class for an error class the caller's side cannot see: same name, extends Error, so
 * `err.constructor.name`, `err.name` and `instanceof Error` all read as they did in the worker.
 */
function syntheticErrorClass(name: string): ErrorClass {
  let cls = syntheticClasses.get(name);
  if (!cls) {
    cls = class extends Error {};
    Object.defineProperty(cls, 'name', { value: name });
    syntheticClasses.set(name, cls);
  }
  return cls;
}

/**
 * Rebuilds what a task threw. `findClass` may return the real class (for example one exported by the
 * task's module, which the caller has loaded too) so that `instanceof MyError` holds.
 */
export function deserializeThrown(
  data: SerializedThrown,
  findClass: (constructorName: string) => ErrorClass | undefined = () => undefined,
): unknown {
  if (data.kind === 'value') return data.value;
  const s = data.error;
  const cls =
    BUILTIN_ERRORS[s.constructorName] ??
    findClass(s.constructorName) ??
    syntheticErrorClass(s.constructorName);
  // Object.create skips the user constructor, whose signature we cannot know; fields are set below.
  const err = Object.create(cls.prototype) as Error & Record<string, unknown>;
  Object.defineProperty(err, 'message', { value: s.message, writable: true, configurable: true });
  if (s.name !== (cls.prototype as Error).name) {
    Object.defineProperty(err, 'name', { value: s.name, writable: true, configurable: true });
  }
  Object.defineProperty(err, 'stack', {
    value: s.stack ?? `${s.name}: ${s.message}`,
    writable: true,
    configurable: true,
  });
  if (s.cause !== undefined) {
    Object.defineProperty(err, 'cause', {
      value: deserializeThrown(s.cause, findClass),
      writable: true,
      configurable: true,
    });
  }
  if (s.errors) {
    Object.defineProperty(err, 'errors', {
      value: s.errors.map((e) => deserializeThrown(e, findClass)),
      writable: true,
      configurable: true,
    });
  }
  for (const [k, v] of Object.entries(s.fields)) err[k] = v;
  return err;
}

/** Attaches the task's index and function name to an error (or wraps a non-Error so it can carry them). */
export function attachTaskInfo(thrown: unknown, info: TaskFailureInfo): unknown {
  if (thrown !== null && (typeof thrown === 'object' || typeof thrown === 'function')) {
    try {
      Object.defineProperty(thrown, 'taskIndex', {
        value: info.taskIndex,
        configurable: true,
        writable: true,
      });
      Object.defineProperty(thrown, 'functionName', {
        value: info.functionName,
        configurable: true,
        writable: true,
      });
    } catch {
      // A frozen object keeps its shape; the caller still gets it unchanged.
    }
  }
  return thrown;
}
