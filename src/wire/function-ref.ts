/**
 * How a worker gets a function (or a class, or a module a captured variable names): by reference, as a
 * module to import and a path to walk, or by value, as code to compile plus the values it captured.
 * One definition for the caller, which writes them, and the worker, which reads them.
 */

/** Import `url` and walk `path` from its namespace (an empty path: the namespace itself). */
export interface ModuleRef {
  readonly kind: 'module';
  readonly url: string;
  readonly path: readonly string[];
  /**
   * Set when the module was still evaluating so its exports could not be read: the worker checks that
   * the export's source text hashes to this.
   */
  readonly sourceHash?: string;
}

/** Walk `path` from the worker's `globalThis` (`Math.pow`). */
export interface GlobalRef {
  readonly kind: 'global';
  readonly path: readonly string[];
}

/**
 * A function sent by value: its code (compiled once per worker, cached by `code.hash`) and the values of
 * the variables it uses, taken when the run started (sent once per run and worker).
 */
export interface ValueRef {
  readonly kind: 'value';
  /** The code, or only its hash when this worker has compiled it before. */
  readonly code: FunctionCode | string;
  /** One value per `code.names`, in that order, encoded as `tagged.ts` says. */
  readonly captures: readonly unknown[];
  /** Positions in `captures` of the values that hold tags (the others are plain data, used as they come). */
  readonly tagged?: readonly number[];
  /** The run that took this snapshot: its definitions are forgotten when the run ends. */
  readonly run: number;
}

export type FunctionRef = ModuleRef | GlobalRef | ValueRef;

/** What a worker needs to compile a function sent by value so that its stack traces point at its source. */
export interface FunctionCode {
  /** Content hash of every field below: the worker's cache key. */
  readonly hash: string;
  /** The function's source text as V8 keeps it (`fn.toString()`). */
  readonly source: string;
  /** `expression`: the source is an expression (function, arrow, class); `method`: an object method. */
  readonly form: 'expression' | 'method';
  /** Whether the code it came from is strict (module code is). */
  readonly strict: boolean;
  /** The variables it uses that are not its own and not globals: bound to `captures`. */
  readonly names: readonly string[];
  /** `fn.name`, kept as it was (compiling it as an expression would change it). */
  readonly name: string;
  /** The script it was defined in (URL or name) and where its source starts there, 0-based. */
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/**
 * What a worker appends to the file name of code compiled from a `FunctionCode`. Its stack frames then
 * read `<file>?joblib-ts-by-value:<line>:<column>` in the coordinates of the code V8 ran in the caller;
 * the caller maps them back to the original source (its own source maps know the `.ts` lines). A query,
 * not a scheme prefix: the name stays a URL of the original file, so `import('./helper.ts')` inside the
 * code resolves next to that file, as it did in the caller.
 */
export const BY_VALUE_FILE_MARK = '?joblib-ts-by-value';
