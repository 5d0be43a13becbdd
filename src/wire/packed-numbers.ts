/**
 * The fast path for the commonest batch, many tasks of numbers in and numbers out (`delayed(square)(i)`):
 * one typed array, transferred rather than cloned, instead of an array per task. Structured clone of
 * 100,000 tiny arrays is most of what a batch costs otherwise.
 *
 * Integers travel in an Int32Array, not a Float64Array: a number read from a Float64Array reaches the
 * task as a heap number, and V8 then compiles the task's arithmetic on it as floating point. A 1 ms
 * integer loop bounded by such an argument ran 7 % slower than with the same value as a small integer.
 */

/** Below this many tasks the per-task arrays are cheap enough. */
const MIN_PACKED = 16;

type PackedNumbers = Float64Array | Int32Array;

export interface PackedArgs {
  arity: number;
  /** Tasks in the batch (needed when `arity` is 0: `values` is then empty). */
  count: number;
  values: PackedNumbers;
}

/** The values as an Int32Array when every one is a 32-bit integer (not -0), else as they are. */
function narrowed(values: Float64Array, allInt32: boolean): PackedNumbers {
  return allInt32 ? Int32Array.from(values) : values;
}

/** Packs the batch's arguments when every task has the same number of arguments and all are numbers. */
export function packArgs(args: readonly (readonly unknown[])[]): PackedArgs | undefined {
  const count = args.length;
  if (count < MIN_PACKED) return undefined;
  const arity = (args[0] as readonly unknown[]).length;
  if (arity > 4) return undefined;
  const values = new Float64Array(count * arity);
  let allInt32 = true;
  for (let t = 0; t < count; t++) {
    const taskArgs = args[t] as readonly unknown[];
    if (taskArgs.length !== arity) return undefined;
    for (let a = 0; a < arity; a++) {
      const value = taskArgs[a];
      if (typeof value !== 'number') return undefined;
      if (allInt32 && ((value | 0) !== value || Object.is(value, -0))) allInt32 = false;
      values[t * arity + a] = value;
    }
  }
  return { arity, count, values: narrowed(values, allInt32) };
}

/**
 * Packs results when they are all numbers. Always as a Float64Array: results are not computed on, and
 * one array type keeps the caller's copy loop monomorphic.
 */
export function packResults(results: readonly unknown[]): Float64Array | undefined {
  const count = results.length;
  if (count < MIN_PACKED) return undefined;
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const value = results[i];
    if (typeof value !== 'number') return undefined;
    values[i] = value;
  }
  return values;
}

/** Calls `fn` with task `t`'s packed arguments, without building an array for the common arities. */
export function callPacked(fn: (...args: number[]) => unknown, packed: PackedArgs, t: number): unknown {
  const { arity, values } = packed;
  const base = t * arity;
  switch (arity) {
    case 0:
      return fn();
    case 1:
      return fn(values[base] as number);
    case 2:
      return fn(values[base] as number, values[base + 1] as number);
    default:
      return fn(...values.subarray(base, base + arity));
  }
}
