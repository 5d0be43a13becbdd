/**
 * Seeds and the generator behind `taskContext().random()`. Pure 32-bit integer arithmetic, so the same
 * seed gives bit-identical numbers in every thread, process and machine, whatever ran the task.
 *
 * - A task's seed: murmur3's 32-bit finalizer (`fmix32`) of the run's seed mixed with the task's index
 *   (and nothing else: not the worker, the batch or the backend).
 * - `random()`: sfc32, Chris Doty-Humphrey's "Small Fast Counter" generator from PractRand (128 bits of
 *   state, passes PractRand and BigCrush), its state filled from the task's seed with splitmix32 and
 *   12 outputs discarded; each call returns a float in [0, 1) with 32 random bits.
 */

/** murmur3's finalizer: a bijection on 32-bit integers that mixes every input bit into every output bit. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The seed of task `index` of a run seeded with `runSeed`: a 32-bit unsigned integer. */
export function taskSeed(runSeed: number, index: number): number {
  // The index's high bits (beyond 2^32 tasks) are folded in too.
  const low = index >>> 0;
  const high = Math.floor(index / 0x1_0000_0000) >>> 0;
  return fmix32((runSeed ^ fmix32((low + Math.imul(high, 0x27d4eb2f) + 0x9e3779b9) >>> 0)) >>> 0);
}

/** A fresh run seed when the user gave none: 32 random bits. */
export function drawRunSeed(): number {
  return (Math.random() * 0x1_0000_0000) >>> 0;
}

/** sfc32 started from a 32-bit seed: returns floats in [0, 1). */
export function sfc32(seed: number): () => number {
  // splitmix32 spreads the one seed word over the four state words.
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  };
  let a = next();
  let b = next();
  let c = next();
  let d = 1;
  const step = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) step();
  return () => step() / 0x1_0000_0000;
}

/** Whether a value can be a `seed` option: an integer in [0, 2^32). */
export function isSeed(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}
