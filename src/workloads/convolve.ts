/**
 * The seed notebook's workload: `np.convolve(random(size), random(size))`, a full direct
 * convolution of two random arrays, written as the plain O(n·m) double loop numpy runs.
 * Exported at top level so that workers can import it by name.
 */
export function convolve(a: Float64Array, b: Float64Array): Float64Array {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return new Float64Array(0);
  const out = new Float64Array(n + m - 1);
  // Output-major with b reversed: each out[k] is a dot product of two forward-walking slices, kept
  // in two register accumulators. About 2x faster in V8 than scattering `out[i + j] += …`.
  const reversed = new Float64Array(m);
  for (let j = 0; j < m; j++) reversed[j] = b[m - 1 - j]!;
  for (let k = 0; k < n + m - 1; k++) {
    const iMin = k >= m ? k - m + 1 : 0;
    const iMax = k < n ? k : n - 1;
    let s0 = 0;
    let s1 = 0;
    let i = iMin;
    let j = m - 1 - (k - iMin);
    for (; i + 1 <= iMax; i += 2, j += 2) {
      s0 += a[i]! * reversed[j]!;
      s1 += a[i + 1]! * reversed[j + 1]!;
    }
    if (i <= iMax) s0 += a[i]! * reversed[j]!;
    out[k] = s0 + s1;
  }
  return out;
}

/** Fills a new array of `size` uniform random numbers in [0, 1), like `np.random.random_sample`. */
export function randomSample(size: number): Float64Array {
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) out[i] = Math.random();
  return out;
}

/** Convolves two random arrays of length `size`; returns the full convolution (length 2·size − 1). */
export function convolveRandom(size: number): Float64Array {
  return convolve(randomSample(size), randomSample(size));
}
