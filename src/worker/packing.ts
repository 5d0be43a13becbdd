/**
 * The fast path for the commonest batch, many tasks of numbers in and numbers out (`delayed(square)(i)`):
 * one Float64Array, transferred rather than cloned, instead of an array per task. Structured clone of
 * 100,000 tiny arrays is most of what a batch costs otherwise.
 */

/** Below this many tasks the per-task arrays are cheap enough. */
const MIN_PACKED = 16;

export interface PackedArgs {
  arity: number;
  values: Float64Array;
}

/** Packs the batch's arguments when every task has the same number of arguments and all are numbers. */
export function packArgs(args: readonly (readonly unknown[])[]): PackedArgs | undefined {
  const count = args.length;
  if (count < MIN_PACKED) return undefined;
  const arity = (args[0] as readonly unknown[]).length;
  if (arity > 4) return undefined;
  const values = new Float64Array(count * arity);
  for (let t = 0; t < count; t++) {
    const taskArgs = args[t] as readonly unknown[];
    if (taskArgs.length !== arity) return undefined;
    for (let a = 0; a < arity; a++) {
      const value = taskArgs[a];
      if (typeof value !== 'number') return undefined;
      values[t * arity + a] = value;
    }
  }
  return { arity, values };
}

/** Packs results when they are all numbers. */
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
