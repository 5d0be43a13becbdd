/**
 * The task functions of the parallel-dispatch benchmark (issue 3), exported at top level so that
 * joblib-ts workers can import them by name. The peers (piscina, tinypool, workerpool) run the same
 * code from plain JavaScript copies in `bench/peers/tasks.mjs` (two of them cannot load `.ts` worker
 * files under tsx); `bench/run.ts` checks that both copies compute the same results before measuring.
 */
export { convolve } from '../src/workloads/convolve.ts';

/** W1, W5, W6: the trivial task. */
export function square(x: number): number {
  return x * x;
}

/**
 * W3: a fixed amount of CPU work, calibrated by `bench/run.ts` to take 1 ms on this machine (the same
 * iteration count goes to every contender). Fixed work rather than "spin until 1 ms has passed", so that
 * a task preempted by another thread still does all of its work and speedups are not flattered.
 */
export function spin1ms(iterations: number): number {
  let x = 0x9e3779b9 | 0;
  let acc = 0;
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    acc = (acc + (x & 0xffff)) | 0;
  }
  return acc;
}

/** W4: reads every element of a (large) array. */
export function sumArray(values: Float64Array): number {
  let s0 = 0;
  let s1 = 0;
  const n = values.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    s0 += values[i]!;
    s1 += values[i + 1]!;
  }
  if (i < n) s0 += values[i]!;
  return s0 + s1;
}
