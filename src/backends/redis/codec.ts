/**
 * How arguments, results and errors travel through Redis: MessagePack (msgpackr) with its structured
 * clone and record extensions, so `Map`, `Set`, `Date`, `BigInt`, typed arrays (as raw bytes), `RegExp`,
 * `undefined`, cycles and shared references survive. Unlike `v8.serialize`, the format does not depend on
 * the Node version: a worker on another Node major reads what the caller wrote.
 *
 * A large top-level argument is replaced by a `BlobRef` (its content hash); its bytes are stored once
 * per call in their own key and fetched once per worker.
 */
import { addExtension, Packr } from 'msgpackr';
import type { SerializedThrown } from '../../errors.ts';
import { describeValue, UnsendableArgumentError } from '../../errors.ts';
import type { FunctionCode } from '../../wire/function-ref.ts';

/** Stands for a large argument stored under its content hash. */
export class BlobRef {
  constructor(readonly hash: string) {}
}

/** Extension type of BlobRef in the stream (msgpackr's own use 0x65..0x78). */
const BLOB_REF_TYPE = 0x4a;

addExtension({
  Class: BlobRef,
  type: BLOB_REF_TYPE,
  write: (ref: BlobRef) => ref.hash,
  read: (hash: string) => new BlobRef(hash),
});

const packr = new Packr({
  structuredClone: true,
  useRecords: true,
  mapsAsObjects: false,
  int64AsType: 'bigint',
  useBigIntExtension: true,
});

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/** How a worker reaches a function: a module path relative to the root plus export path and fingerprint, or a global. */
export type WireFunction =
  | {
      readonly m: string;
      readonly p: readonly string[];
      readonly h: string;
      readonly n: string;
      /** The export's source hash, when the caller could not read its module's exports yet. */
      readonly sh?: string;
    }
  | { readonly g: readonly string[]; readonly n: string }
  /** Definition `d` of the payload's signed definitions (`x`): a function sent by value. */
  | { readonly d: number; readonly n: string };

/**
 * What a function sent by value needs on a worker, one definition per function, class or module it
 * names (its own code, what it captured): `i` is the caller's id for it, which tags in captures and
 * arguments name; `d` the ids it needs first.
 */
export interface WireDefinition {
  readonly i: number;
  readonly n: string;
  readonly r:
    | Exclude<WireFunction, { d: number }>
    /** A module of Node itself (`node:zlib`), and the export path to walk. */
    | { readonly b: string; readonly p: readonly string[] }
    /** Code (its `FunctionCode`), the captured values (`k`) and which of them hold tags (`t`). */
    | {
        readonly v: {
          readonly c: FunctionCode;
          readonly k: readonly unknown[];
          readonly t?: readonly number[];
        };
      };
  readonly d?: readonly number[];
}

/** What a job's payload key holds. */
export interface BatchPayload {
  readonly v: 1;
  /** Input index of the first task (for messages). */
  readonly first: number;
  readonly fns: readonly WireFunction[];
  /** Index into `fns`: one for the whole batch, or one per task. */
  readonly f: number | readonly number[];
  readonly a: readonly (readonly unknown[])[];
  /** The run's `timeoutMs`, enforced by the worker's local pool. */
  readonly t?: number;
  /** The run's seed (`taskContext().seed`). */
  readonly sd?: number;
  /** Which try of these tasks this is, when not the first. */
  readonly at?: number;
  /** The call's initializer: its key, function and arguments. */
  readonly i?: { readonly k: string; readonly fn: WireFunction; readonly a: readonly unknown[] };
  /** Packed `WireDefinition[]`: code sent by value, run only when `xs` is the worker's secret's signature of it. */
  readonly x?: Uint8Array;
  /** HMAC-SHA256 of `x` (with the call's id) under the secret the caller and the workers share. */
  readonly xs?: Uint8Array;
  /** The arguments hold tags (`wire/tagged.ts`) naming definitions of `x`. */
  readonly e?: 1;
  /** Keep going past a failed task and report each failure (settled mode, retries). */
  readonly k?: 1;
}

/** A task of a batch that failed, with `k`: its position and what it threw. */
export interface WireFailure {
  readonly at: number;
  readonly e: SerializedThrown;
}

/**
 * What the batch's tasks wrote and reported, in order, for the caller to emit before the batch's
 * results: `[position in the batch (-1: the initializer), 'stdout' | 'stderr', line]` or
 * `[position, 'report', value]`.
 */
export type WireOutput =
  | readonly [at: number, kind: 'stdout' | 'stderr', line: string]
  | readonly [at: number, kind: 'report', value: unknown];

/**
 * A process (or thread) of the worker's local pool that died while it ran a task of the batch: its
 * label there (`process 1234`), how it ended, and the task's position in the batch (-1: none known).
 * The caller tells it as `worker-crashed`, then `worker-exited`, before the batch's results.
 */
export interface WireCrash {
  readonly w: string;
  readonly at: number;
  readonly c: number | null;
  readonly g: string | null;
}

/** What a worker pushes to the call's results list for a batch. */
export type WireOutcome =
  /** `fl`: with `k`, the tasks that failed (their `r` entries are empty). `o`: the tasks' output. */
  | {
      readonly s: number;
      readonly ok: true;
      readonly r: unknown[];
      readonly fl?: readonly WireFailure[];
      readonly o?: readonly WireOutput[];
    }
  | {
      readonly s: number;
      readonly ok: false;
      readonly at: number;
      readonly e: SerializedThrown;
      readonly host: string;
      readonly worker: string;
      readonly o?: readonly WireOutput[];
      /** The worker's initializer failed (no task ran). */
      readonly init?: true;
      /** With `k`: the results (and failures) of the tasks before `at`, when the worker kept them. */
      readonly r?: unknown[];
      readonly fl?: readonly WireFailure[];
      /** Local workers that died running its tasks (absent from workers before this field existed). */
      readonly wc?: readonly WireCrash[];
    }
  | {
      readonly s: number;
      readonly ok: 'cancelled';
      readonly completed: number;
      readonly o?: readonly WireOutput[];
    }
  /** The batch could not run at all (its payload was gone...): fails the call. */
  | { readonly s: number; readonly ok: 'infra'; readonly message: string; readonly host: string };

const STANDARD_PROTOTYPES = new Set<unknown>([
  Object.prototype,
  Array.prototype,
  null,
  Map.prototype,
  Set.prototype,
  Date.prototype,
  RegExp.prototype,
  ArrayBuffer.prototype,
  DataView.prototype,
  Error.prototype,
]);

class Unsendable extends Error {
  constructor(readonly what: string) {
    super(what);
  }
}

/**
 * Walks a value as the encoder will: returns an estimate of its encoded size and throws `Unsendable`
 * for what cannot travel (functions, symbols, objects that structured clone refuses).
 */
function measure(value: unknown, seen: Set<object>): number {
  switch (typeof value) {
    case 'number':
    case 'bigint':
      return 9;
    case 'boolean':
    case 'undefined':
      return 1;
    case 'string':
      return value.length + 5;
    case 'function':
      throw new Unsendable(describeValue(value));
    case 'symbol':
      throw new Unsendable('a symbol');
  }
  if (value === null) return 1;
  const object = value as object;
  if (seen.has(object)) return 3;
  seen.add(object);
  if (ArrayBuffer.isView(object)) return object.byteLength + 8;
  if (object instanceof ArrayBuffer) return object.byteLength + 8;
  const proto: unknown = Object.getPrototypeOf(object);
  if (!STANDARD_PROTOTYPES.has(proto) && !(object instanceof Error)) {
    // A class instance travels as its own fields, as with structured clone; host objects do not travel.
    try {
      structuredClone(object);
    } catch (error) {
      throw new Unsendable(`${describeValue(object)} (${(error as Error).message})`);
    }
  }
  let size = 8;
  if (Array.isArray(object)) {
    for (const item of object) size += measure(item, seen);
  } else if (object instanceof Map) {
    for (const [k, v] of object) size += measure(k, seen) + measure(v, seen);
  } else if (object instanceof Set) {
    for (const item of object) size += measure(item, seen);
  } else if (!(object instanceof Date) && !(object instanceof RegExp)) {
    for (const key of Object.keys(object)) {
      size += key.length + measure((object as Record<string, unknown>)[key], seen);
    }
  }
  return size;
}

/** Estimated encoded size of a value; throws `Unsendable` for what cannot travel. */
export function encodedSizeEstimate(value: unknown): number {
  if (value === null || typeof value !== 'object') return measure(value, new Set());
  return measure(value, new Set());
}

/** Builds the `UnsendableArgumentError` the local backends give for the same mistake. */
export function checkArgument(
  value: unknown,
  taskIndex: number,
  argumentIndex: number,
  functionName: string,
): number {
  try {
    return encodedSizeEstimate(value);
  } catch (error) {
    if (!(error instanceof Unsendable)) throw error;
    throw new UnsendableArgumentError(
      `Task ${taskIndex} (${functionName}): argument ${argumentIndex} (${describeValue(value)}) cannot be sent to a worker: it is or contains ${error.what}. Arguments travel through Redis as data: pass plain data (numbers, strings, arrays, plain objects, typed arrays, Map, Set, Date, BigInt), not functions, class instances with behaviour, or handles.`,
      taskIndex,
      functionName,
      argumentIndex,
    );
  }
}

/** True when a value can be encoded for Redis (used for error fields). */
export function canEncode(value: unknown): boolean {
  try {
    encodedSizeEstimate(value);
    return true;
  } catch {
    return false;
  }
}
