// One cold start, as a user's program meets it: run by bench/startup.ts in a fresh process, from a project
// where joblib-ts is installed as built JavaScript, on plain `node` or under `tsx`. Plain JavaScript so that
// the same file runs both ways. Prints one line `STARTUP-RESULT {json}`; the clock starts after the imports.
//   node program.mjs cell | wide | processes | piscina | piscina-default
import { createRequire } from 'node:module';
import { delayed, Parallel } from 'joblib-ts';

const mode = process.argv[2] ?? 'cell';
const range = (n) => Array.from({ length: n }, (_, i) => i);

/** The seed notebook's cell `Parallel(n_jobs=8)(delayed(pow)(i, 2) for i in range(10))`, or a wider pool. */
async function joblib(nJobs, backend) {
  const t0 = performance.now();
  const parallel = new Parallel({ nJobs, backend, returnAs: 'generator' });
  let first;
  const results = [];
  for await (const value of parallel.run(range(10).map((i) => delayed(Math.pow)(i, 2)))) {
    first ??= performance.now() - t0;
    results.push(value);
  }
  const all = performance.now() - t0;
  // The backend is private: read through a cast, as the tests do.
  const started = parallel.backend?.workersStarted;
  await parallel.close();
  return { first, all, started, check: results.reduce((a, b) => a + b, 0) };
}

/** piscina's cold start on the same work: a pool of 8 threads (or its defaults), 10 tasks, first result. */
async function piscina(threads) {
  const { Piscina } = createRequire(import.meta.url)('piscina');
  const t0 = performance.now();
  const filename = new URL('./peer-worker.mjs', import.meta.url).href;
  const pool = new Piscina(threads ? { filename, minThreads: threads, maxThreads: threads } : { filename });
  let first;
  const results = await Promise.all(
    range(10).map((i) =>
      pool.run(i, { name: 'square' }).then((value) => {
        first ??= performance.now() - t0;
        return value;
      }),
    ),
  );
  const all = performance.now() - t0;
  const started = pool.threads.length;
  await pool.destroy();
  return { first, all, started, check: results.reduce((a, b) => a + b, 0) };
}

const run = {
  cell: () => joblib(8, 'threads'),
  processes: () => joblib(8, 'processes'),
  wide: () => joblib(1000, 'threads'),
  piscina: () => piscina(8),
  'piscina-default': () => piscina(undefined),
}[mode];
if (!run) throw new Error(`unknown mode ${mode}`);
const result = await run();
process.stdout.write(`STARTUP-RESULT ${JSON.stringify(result)}\n`);
