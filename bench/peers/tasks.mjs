// Plain JavaScript copies of bench/tasks.ts (and of convolve in src/workloads/convolve.ts) for the peer
// pools' worker files: tinypool and workerpool cannot load .ts worker files under tsx on Node 20.
// bench/run.ts checks that these give the same results as the TypeScript originals before measuring.

export function square(x) {
  return x * x;
}

export function spin1ms(iterations) {
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

export function sumArray(values) {
  let s0 = 0;
  let s1 = 0;
  const n = values.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    s0 += values[i];
    s1 += values[i + 1];
  }
  if (i < n) s0 += values[i];
  return s0 + s1;
}

export function convolve(a, b) {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return new Float64Array(0);
  const out = new Float64Array(n + m - 1);
  const reversed = new Float64Array(m);
  for (let j = 0; j < m; j++) reversed[j] = b[m - 1 - j];
  for (let k = 0; k < n + m - 1; k++) {
    const iMin = k >= m ? k - m + 1 : 0;
    const iMax = k < n ? k : n - 1;
    let s0 = 0;
    let s1 = 0;
    let i = iMin;
    let j = m - 1 - (k - iMin);
    for (; i + 1 <= iMax; i += 2, j += 2) {
      s0 += a[i] * reversed[j];
      s1 += a[i + 1] * reversed[j + 1];
    }
    if (i <= iMax) s0 += a[i] * reversed[j];
    out[k] = s0 + s1;
  }
  return out;
}
