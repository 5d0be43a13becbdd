/**
 * The cost of a deep code key (issue 17's target: "keying a function with 50 reachable helpers takes
 * under 5 ms the first time and nothing after"), for a function that reaches 50 helpers spread over five
 * TypeScript modules (a chain of ten per module, each module's last helper calling the next module's
 * first through an import, with a constant per module and a package import).
 *
 * Every measurement is the first keying of a fresh process (`node --import tsx`, as a user's program
 * runs), BENCH_PROCS processes (default 9), medians, with the CPU time of the process beside the wall
 * time (the machine may be shared; CPU time counts all the process's threads, V8's compiler and garbage
 * collector threads included, so it can exceed the wall time):
 *
 * - `import`: loading deep-code.ts and what it imports (acorn included);
 * - `startup`: the first keying of a trivial function of another module: the inspector session and the
 *   Debugger's replay of the scripts loaded so far (which maps script ids to files);
 * - `per function`: then the first keying of the function with 50 helpers (reading its sources: the
 *   scan of src/memory/source-scan.ts, acorn only where the scan cannot decide);
 * - `per function, with stored facts`: the same in a process given the parse facts an earlier process
 *   stored (as `Memory` keeps them beside a code version): an unchanged program's next run;
 * - `next function`: then another function of the same shape in other files (what each further cached
 *   function of a program costs, once the keying code has run once);
 * - `cold total`: in other processes, the first keying of that function with nothing before it;
 * - `again`: keying the same function again in the process (memoised), per call.
 *
 * Run: `npm run bench:deep-key` (or `npx tsx bench/deep-key.ts`); BENCH_CPU_PROF=<folder> profiles the children.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { StoredFacts } from '../src/memory/deep-code.ts';

const MODULES = 5;
const PER_MODULE = 10;
const PROCS = Number(process.env.BENCH_PROCS ?? 9);
/** BENCH_CPU_PROF=<folder>: each child writes a CPU profile there. */
const PROFILE_DIR = process.env.BENCH_CPU_PROF;

interface ChildResult {
  importMs: number;
  startupMs: number;
  startupCpuMs: number;
  firstMs: number;
  /** Then another function of the same shape, in other files. */
  nextMs: number;
  nextCpuMs: number;
  firstCpuMs: number;
  againUs: number;
  parts: number;
  /** Sources read (scanned or parsed) by the measured keying, and those of them given to acorn. */
  parsed: number;
  acorn: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** The helper modules: `m<k>.ts` holds f<k>_0 ... f<k>_9; f<k>_9 calls f<k+1>_0 (imported). */
function writeProject(dir: string): void {
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  for (let m = 0; m < MODULES; m++) {
    let s = `import { parse } from 'acorn';\n`;
    if (m + 1 < MODULES) s += `import { f${m + 1}_0 } from './m${m + 1}.ts';\n`;
    s += `\nconst SCALE_${m} = ${m + 1};\n\n`;
    for (let i = 0; i < PER_MODULE; i++) {
      const next = i + 1 < PER_MODULE ? `f${m}_${i + 1}(x)` : m + 1 < MODULES ? `f${m + 1}_0(x)` : '0';
      const body =
        i === 0
          ? `  const scaled = x * SCALE_${m};\n  return scaled + ${next};`
          : i === PER_MODULE - 1 && m === MODULES - 1
            ? `  return typeof parse === 'function' ? x + ${i} : ${next};`
            : `  const y = x + ${i};\n  return y > 1e9 ? y : ${next};`;
      s += `export function f${m}_${i}(x: number): number {\n${body}\n}\n\n`;
    }
    writeFileSync(join(dir, `m${m}.ts`), s);
  }
  writeFileSync(
    join(dir, 'root.ts'),
    `import { f0_0 } from './m0.ts';\n\nexport function featurize(x: number): number {\n  return f0_0(x) * 2;\n}\n`,
  );
  writeFileSync(join(dir, 'trivial.ts'), 'export function trivial(): number {\n  return 1;\n}\n');
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

type Mode = 'split' | 'cold' | 'stored';

async function child(dir: string, mode: Mode): Promise<void> {
  const warmFirst = mode !== 'cold';
  const root = (await import(pathToFileURL(join(dir, 'root.ts')).href)) as { featurize: () => number };
  const other = (await import(pathToFileURL(join(dir, 'other', 'root.ts')).href)) as {
    featurize: () => number;
  };
  const { trivial } = (await import(pathToFileURL(join(dir, 'trivial.ts')).href)) as {
    trivial: () => number;
  };
  let t = performance.now();
  const { deepCode, exactParseCount, parsedSourceCount } = await import('../src/memory/deep-code.ts');
  const factsFile = join(dir, 'facts.json');
  const stored = mode === 'stored' ? (JSON.parse(readFileSync(factsFile, 'utf8')) as StoredFacts) : undefined;
  const importMs = performance.now() - t;
  let startupMs = 0;
  let startupCpuMs = 0;
  if (warmFirst) {
    t = performance.now();
    const c = process.cpuUsage();
    (function startupKeying() {
      deepCode(trivial);
    })();
    startupMs = performance.now() - t;
    startupCpuMs = cpuMs(c);
  }
  t = performance.now();
  const c = process.cpuUsage();
  const parsedBefore = parsedSourceCount();
  const acornBefore = exactParseCount();
  const code = (function firstKeying() {
    return deepCode(root.featurize, stored);
  })();
  const firstMs = performance.now() - t;
  const firstCpuMs = cpuMs(c);
  const parts = Object.keys(code.parts).length;
  const parsed = parsedSourceCount() - parsedBefore;
  const acorn = exactParseCount() - acornBefore;
  if (mode === 'split') writeFileSync(factsFile, JSON.stringify(code.facts));
  // Another function of the same shape in other files: what each further cached function costs.
  t = performance.now();
  const c2 = process.cpuUsage();
  (function nextKeying() {
    deepCode(other.featurize, stored);
  })();
  const nextMs = performance.now() - t;
  const nextCpuMs = cpuMs(c2);
  const N = 10000;
  t = performance.now();
  for (let i = 0; i < N; i++) deepCode(root.featurize);
  const againUs = ((performance.now() - t) / N) * 1000;
  const result: ChildResult = {
    importMs,
    startupMs,
    startupCpuMs,
    firstMs,
    firstCpuMs,
    nextMs,
    nextCpuMs,
    againUs,
    parts,
    parsed,
    acorn,
  };
  console.log(JSON.stringify(result));
}

function run(dir: string, mode: Mode): ChildResult {
  const out = spawnSync(
    process.execPath,
    [
      ...(PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-interval', '50'] : []),
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--child',
      dir,
      mode,
    ],
    { encoding: 'utf8' },
  );
  if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`);
  process.stderr.write(out.stderr);
  return JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '') as ChildResult;
}

if (process.argv[2] === '--child') {
  await child(process.argv[3] ?? '', (process.argv[4] ?? 'split') as Mode);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'joblib-ts-bench-deep-key-'));
  try {
    writeProject(dir);
    mkdirSync(join(dir, 'other'));
    writeProject(join(dir, 'other'));
    // The package the last helper imports must resolve from the temp folder: point at ours.
    symlinkSync(fileURLToPath(new URL('../node_modules', import.meta.url)), join(dir, 'node_modules'));
    const load = loadavg().map((l) => l.toFixed(1));
    const split: ChildResult[] = [];
    const cold: ChildResult[] = [];
    const stored: ChildResult[] = [];
    for (let i = 0; i < PROCS; i++) {
      split.push(run(dir, 'split'));
      cold.push(run(dir, 'cold'));
      stored.push(run(dir, 'stored'));
    }
    const parts = split[0]?.parts;
    const m = (rows: ChildResult[], k: keyof ChildResult) => median(rows.map((r) => r[k])).toFixed(2);
    const range = (rows: ChildResult[], k: keyof ChildResult) => {
      const v = rows.map((r) => r[k]);
      return `${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)}`;
    };
    console.log(
      `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, load average ${load.join(' ')} at start (${loadavg()
        .map((l) => l.toFixed(1))
        .join(
          ' ',
        )} at end); ${PROCS} fresh processes each; ${parts} parts (${MODULES * PER_MODULE} helpers, the function, ${MODULES} constants, 1 package)`,
    );
    console.log('| step (first keying in a fresh process) | wall ms, median (range) | CPU ms, median |');
    console.log('| -------------------------------------- | ---------------------: | -------------: |');
    console.log(
      `| import deep-code.ts (acorn...) | ${m(split, 'importMs')} (${range(split, 'importMs')}) | |`,
    );
    console.log(
      `| startup: first keying of a trivial function | ${m(split, 'startupMs')} (${range(split, 'startupMs')}) | ${m(split, 'startupCpuMs')} |`,
    );
    console.log(
      `| per function: then the function with 50 helpers (${split[0]?.parsed} sources read, ${split[0]?.acorn} by acorn) | ${m(split, 'firstMs')} (${range(split, 'firstMs')}) | ${m(split, 'firstCpuMs')} |`,
    );
    console.log(
      `| per function, with the facts an earlier process stored (${stored[0]?.parsed} sources read) | ${m(stored, 'firstMs')} (${range(stored, 'firstMs')}) | ${m(stored, 'firstCpuMs')} |`,
    );
    console.log(
      `| next function: then another function with 50 helpers, in other files | ${m(split, 'nextMs')} (${range(split, 'nextMs')}) | ${m(split, 'nextCpuMs')} |`,
    );
    console.log(
      `| next function, with stored facts | ${m(stored, 'nextMs')} (${range(stored, 'nextMs')}) | ${m(stored, 'nextCpuMs')} |`,
    );
    console.log(
      `| cold total: the function with 50 helpers first | ${m(cold, 'firstMs')} (${range(cold, 'firstMs')}) | ${m(cold, 'firstCpuMs')} |`,
    );
    console.log(
      `| again (same function, same process), per call | ${(median(split.map((r) => r.againUs)) / 1000).toFixed(5)} | |`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
