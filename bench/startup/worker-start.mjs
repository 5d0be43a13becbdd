// Where one worker's start goes, step by step (run by bench/startup.ts, under tsx, in the scratch project
// where joblib-ts is installed built). Each measurement starts one worker alone and times its first
// message; prints `WORKER-START {json}` with the milliseconds of each repetition.
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

const reps = Number(process.argv[2] ?? 5);
const require = createRequire(import.meta.url);
const pkg = dirname(require.resolve('joblib-ts/package.json'));
const tsx = dirname(require.resolve('tsx/package.json'));
const threadEntry = pathToFileURL(join(pkg, 'dist/worker/thread-entry.js')).href;
const processEntry = join(pkg, 'dist/worker/process-entry.js');
const tsxApi = pathToFileURL(join(pkg, 'dist/tsx.js')).href;
const tsTask = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'small-task.ts')).href;
const withoutTsx = process.execArgv.filter((a, i, all) => !/tsx/.test(a) && !/tsx/.test(all[i + 1] ?? ''));

function thread(code, execArgv) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, execArgv, workerData: { sourceMaps: false } });
    worker.once('message', () => {
      const ms = performance.now() - t0;
      worker.terminate().then(() => resolve(ms));
    });
    worker.once('error', reject);
  });
}

function child(file, execArgv, init) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const proc = fork(file, [], {
      execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
    });
    if (init) proc.send({ t: 'init', init: { sourceMaps: false } });
    proc.once('message', () => {
      const ms = performance.now() - t0;
      proc.kill('SIGKILL');
      proc.once('close', () => resolve(ms));
    });
    proc.once('error', reject);
  });
}

const post = "require('node:worker_threads').parentPort.postMessage(0)";
const bare = join(pkg, '..', '..', 'bare-child.cjs');
await import('node:fs').then((fs) => fs.writeFileSync(bare, "process.send('up');\n"));
const steps = {
  'thread, bare (no flags)': () => thread(post, []),
  "thread, bare, inheriting tsx's loader flags (before)": () => thread(post, undefined),
  "thread, joblib-ts's entry (now)": () => thread(`import(${JSON.stringify(threadEntry)})`, withoutTsx),
  "thread, joblib-ts's entry inheriting tsx's flags (before)": () =>
    thread(`import(${JSON.stringify(threadEntry)})`, undefined),
  'thread, entry + tsx registered + a .ts task module imported (TypeScript tasks only)': () =>
    thread(
      `(async () => { await import(${JSON.stringify(threadEntry)}); const { registerTsx } = await import(${JSON.stringify(tsxApi)}); await registerTsx(${JSON.stringify(tsx)}); await import(${JSON.stringify(tsTask)}); })()`,
      withoutTsx,
    ),
  'process, bare (no flags)': () => child(bare, [], false),
  "process, bare, with tsx's loader flags (before)": () => child(bare, process.execArgv, false),
  "process, joblib-ts's entry (now)": () => child(processEntry, withoutTsx, true),
  "process, joblib-ts's entry with tsx's flags (before)": () => child(processEntry, process.execArgv, true),
};
const results = {};
for (let r = 0; r < reps; r++) {
  for (const [what, step] of Object.entries(steps)) {
    const list = results[what] ?? [];
    list.push(await step());
    results[what] = list;
  }
}
process.stdout.write(`WORKER-START ${JSON.stringify(results)}\n`);
