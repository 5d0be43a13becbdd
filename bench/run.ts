/**
 * The parallel-dispatch benchmark of issue 3: `npm run bench` (flags after `--`).
 *
 * Runs each workload (W1..W6, see `config.ts`) on each contender (a plain loop on the main thread,
 * joblib-ts `threads` and `processes`, piscina, tinypool, workerpool; 2 workers each), every cell in a
 * fresh child process (`bench/cell.ts`) so that warm pools and RSS peaks never leak from one cell to the
 * next; medians of `--reps` repetitions, interleaved (repetition-major) so that a burst of load on the
 * machine does not land on a single contender. Prints one table and writes it as Markdown.
 *
 *   npm run bench                                  everything, 3 repetitions
 *   npm run bench -- --only W1,W3 --reps 5         some workloads
 *   npm run bench -- --contenders plain,threads    some contenders
 *   npm run bench -- --profile W1:threads,W3:threads   CPU profiles (--cpu-prof) of cells, summarised
 *
 * Other flags: --out FILE (default bench/results/parallel-dispatch.md), --spin-iterations N (W3's 1 ms
 * of work; calibrated here by default), --w5-peer-tasks N (default 200,000: see the note printed with
 * the table), --timeout SECONDS (per cell, default 300).
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CellResult,
  CONTENDERS,
  type ContenderId,
  isPeer,
  PEERS,
  RESULT_PREFIX,
  SIZES,
  WORKERS,
  WORKLOAD_TITLES,
  WORKLOADS,
  type WorkloadId,
} from './config.ts';
import { PeakSampler } from './memory-usage.ts';
import * as peerTasks from './peers/tasks.mjs';
import { formatSummary, profileFiles, summarizeProfile } from './profile.ts';
import { convolve, spin1ms, square, sumArray } from './tasks.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const rootDir = dirname(benchDir);
const cellPath = join(benchDir, 'cell.ts');

// ---------------------------------------------------------------- flags

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

function listFlag<T extends string>(name: string, all: readonly T[]): T[] {
  const value = flag(name);
  if (!value) return [...all];
  const picked = value.split(',').map((s) => s.trim());
  for (const p of picked) {
    if (!(all as readonly string[]).includes(p)) {
      console.error(`--${name}: unknown ${p}; expected some of ${all.join(', ')}`);
      process.exit(2);
    }
  }
  return all.filter((a) => picked.includes(a));
}

const workloads = listFlag('only', WORKLOADS);
const contenders = listFlag('contenders', CONTENDERS);
const reps = Number(flag('reps') ?? 3);
const outFile = flag('out') ?? join(benchDir, 'results', 'parallel-dispatch.md');
const w5PeerTasks = Number(flag('w5-peer-tasks') ?? 200_000);
const cellTimeoutMs = Number(flag('timeout') ?? 300) * 1000;
const profileSpecs = flag('profile');
/** Formats a Markdown file we wrote with Biome, as `npm run lint` expects of every file in the repository. */
function formatMarkdown(file: string): void {
  const biome = join(rootDir, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  spawnSync(process.execPath, [biome, 'format', '--write', file], { cwd: rootDir, stdio: 'ignore' });
}

/** Run the cells from JavaScript compiled by tsc (as users of the npm package get it), not from TypeScript under tsx. */
const built = process.argv.includes('--built');

// ---------------------------------------------------------------- machine

function packageVersion(name: string): string {
  try {
    const text = readFileSync(join(rootDir, 'node_modules', name, 'package.json'), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return '?';
  }
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}

const cores = availableParallelism();
const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
const loadBefore = load();

// ---------------------------------------------------------------- built mode

const buildDir = join('/tmp', 'joblib-ts-bench-build');

/**
 * Compiles src/ and bench/ with tsc into /tmp (never touching dist/, which other work rebuilds), with
 * the peers' worker files and a link to node_modules: cells then run on plain `node`, no tsx anywhere,
 * and CPU profiles point at real lines of the JavaScript.
 */
function buildJavaScript(): string {
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true });
  const tsconfig = join(buildDir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(rootDir, 'tsconfig.json'),
      compilerOptions: {
        rootDir,
        outDir: join(buildDir, 'out'),
        declaration: false,
        sourceMap: false,
        noEmit: false,
      },
      include: [join(rootDir, 'src'), join(rootDir, 'bench')],
    }),
  );
  const tsc = join(rootDir, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', tsconfig], { cwd: rootDir, encoding: 'utf8' });
  const out = join(buildDir, 'out');
  if (!existsSync(join(out, 'bench', 'cell.js'))) {
    console.error(`tsc did not emit bench/cell.js:\n${result.stdout}${result.stderr}`);
    process.exit(1);
  }
  if (result.status !== 0)
    console.error('(tsc reported type errors, probably in work in progress; it emitted anyway)');
  mkdirSync(join(out, 'bench', 'peers'), { recursive: true });
  for (const f of readdirSync(join(benchDir, 'peers'))) {
    if (f.endsWith('.mjs')) copyFileSync(join(benchDir, 'peers', f), join(out, 'bench', 'peers', f));
  }
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(rootDir, 'node_modules'), join(out, 'node_modules'));
  return join(out, 'bench', 'cell.js');
}

const cellEntry = built ? buildJavaScript() : cellPath;

// ---------------------------------------------------------------- same work everywhere

/** The peers run JavaScript copies of the task functions: they must compute exactly the same thing. */
function checkPeerCopies(): void {
  const a = Float64Array.from({ length: 257 }, (_, i) => Math.sin(i));
  const b = Float64Array.from({ length: 131 }, (_, i) => Math.cos(i));
  const same = (x: Float64Array, y: Float64Array) => x.length === y.length && x.every((v, i) => v === y[i]);
  const ok =
    square(12345) === peerTasks.square(12345) &&
    spin1ms(10_000) === peerTasks.spin1ms(10_000) &&
    sumArray(a) === peerTasks.sumArray(a) &&
    same(convolve(a, b), peerTasks.convolve(a, b));
  if (!ok) {
    console.error('bench/peers/tasks.mjs no longer computes what bench/tasks.ts does: fix the copy first.');
    process.exit(1);
  }
}

/** Iterations of `spin1ms` that take 1 ms on this machine, now (median of several timings). */
function calibrateSpin(): number {
  const trial = 200_000;
  for (let i = 0; i < 20; i++) spin1ms(trial); // compile it
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    spin1ms(trial);
    times.push(performance.now() - t0);
  }
  return Math.round(trial / median(times));
}

// ---------------------------------------------------------------- cells

function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface Measured extends CellResult {
  /** Peak memory of the cell's process tree (kB): its own maxRSS, or the sampled PSS of it and its children. */
  peakKb: number;
}

function runCell(
  workload: WorkloadId,
  contender: ContenderId,
  spinIterations: number,
  nodeFlags: string[] = [],
): Promise<Measured> {
  const args = [
    ...(built ? [] : ['--import', 'tsx']),
    '--expose-gc',
    ...nodeFlags,
    cellEntry,
    '--workload',
    workload,
    '--contender',
    contender,
    '--spin-iterations',
    String(spinIterations),
    '--w5-peer-tasks',
    String(w5PeerTasks),
  ];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: rootDir, stdio: ['ignore', 'pipe', 'pipe'] });
    // Memory matters for W4 and W5 only; elsewhere the sampler would only steal CPU from the cell.
    const sampler =
      workload === 'W4' || workload === 'W5' ? new PeakSampler(child.pid as number, 20) : undefined;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), cellTimeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const sampledKb = sampler?.stop() ?? 0;
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (!line) {
        const why =
          signal === 'SIGKILL' ? `timed out after ${cellTimeoutMs / 1000} s` : `exit ${code ?? signal}`;
        const last = stderr.trim().split('\n').slice(-3).join(' | ');
        resolve({
          status: 'error',
          ms: Number.NaN,
          tasks: 0,
          maxRssKb: 0,
          peakKb: 0,
          note: `${why}: ${last}`,
        });
        return;
      }
      const result = JSON.parse(line.slice(RESULT_PREFIX.length)) as CellResult;
      resolve({ ...result, peakKb: Math.max(result.maxRssKb, sampledKb) });
    });
  });
}

// ---------------------------------------------------------------- table

interface Row {
  workload: WorkloadId;
  contender: ContenderId;
  runs: Measured[];
  status: CellResult['status'];
  ms: number;
  minMs: number;
  maxMs: number;
  tasks: number;
  peakKb: number;
  baselineKb: number | undefined;
  note: string | undefined;
  check: number | undefined;
}

function summarize(workload: WorkloadId, contender: ContenderId, runs: Measured[]): Row {
  const ok = runs.filter((r) => r.status !== 'error');
  const status = ok.length === 0 ? 'error' : ok.some((r) => r.status === 'na') ? 'na' : 'ok';
  const used = ok.length > 0 ? ok : runs;
  const notes = [...new Set(runs.map((r) => r.note).filter((n): n is string => !!n))];
  const baselines = used.map((r) => r.baselineKb).filter((b): b is number => b !== undefined);
  return {
    workload,
    contender,
    runs,
    status,
    ms: median(used.map((r) => r.ms)),
    minMs: Math.min(...used.map((r) => r.ms)),
    maxMs: Math.max(...used.map((r) => r.ms)),
    tasks: median(used.map((r) => r.tasks)),
    peakKb: median(used.map((r) => r.peakKb)),
    baselineKb: baselines.length > 0 ? median(baselines) : undefined,
    note: notes.length > 0 ? notes.join('; ') : undefined,
    check: used[0]?.check,
  };
}

const CONTENDER_LABELS: Record<ContenderId, string> = {
  plain: 'plain loop',
  threads: '**joblib-ts threads**',
  processes: '**joblib-ts processes**',
  piscina: `piscina ${packageVersion('piscina')}`,
  tinypool: `tinypool ${packageVersion('tinypool')}`,
  workerpool: `workerpool ${packageVersion('workerpool')}`,
};

const MB = 1024;
const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(3));
const fmtRate = (perS: number) => Math.round(perS).toLocaleString('en-US');
const fmtX = (x: number) => (Number.isFinite(x) ? `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}x` : '');
const throughput = (row: Row) => row.tasks / row.ms; // tasks per ms

interface Verdict {
  target: string;
  met: boolean | undefined;
  detail: string;
}

function verdict(row: Row, rows: Row[]): Verdict {
  const find = (c: ContenderId) => rows.find((r) => r.workload === row.workload && r.contender === c);
  const plain = find('plain');
  const peers = PEERS.map(find).filter((r): r is Row => !!r && r.status === 'ok');
  const bestPeer = peers.length > 0 ? Math.max(...peers.map(throughput)) : undefined;
  const speedup = plain ? plain.ms / row.ms : Number.NaN;
  const vsBestPeer = bestPeer ? throughput(row) / bestPeer : Number.NaN;
  const rate = throughput(row) * 1000;
  const deltaMb = row.baselineKb !== undefined ? (row.peakKb - row.baselineKb) / MB : Number.NaN;
  const allOf = (...checks: (boolean | undefined)[]) =>
    checks.some((c) => c === undefined) ? undefined : checks.every(Boolean);
  switch (row.workload) {
    case 'W1': {
      const piscina = find('piscina');
      const vsPiscina = piscina?.status === 'ok' ? throughput(row) / throughput(piscina) : Number.NaN;
      return {
        target: '>= 1,000,000 tasks/s and >= 50x piscina',
        met: allOf(rate >= 1e6, Number.isFinite(vsPiscina) ? vsPiscina >= 50 : undefined),
        detail: `${fmtRate(rate)}/s, ${fmtX(vsPiscina)} piscina`,
      };
    }
    case 'W2':
      return {
        target: '>= 1.9x plain, >= best peer',
        met: allOf(plain ? speedup >= 1.9 : undefined, bestPeer === undefined ? undefined : vsBestPeer >= 1),
        detail: `${fmtX(speedup)} plain, ${fmtX(vsBestPeer)} best peer`,
      };
    case 'W3':
      return {
        target: '>= 1.92x plain',
        met: plain ? speedup >= 1.92 : undefined,
        detail: `${fmtX(speedup)} plain`,
      };
    case 'W4': {
      const limitMb = 1.5 * SIZES.w4Megabytes;
      const limitMs = plain ? (1.2 * plain.ms) / 2 : Number.NaN;
      return {
        target: `peak <= baseline + ${limitMb} MB; time <= 1.2 x plain / 2`,
        met: allOf(deltaMb <= limitMb, plain ? row.ms <= limitMs : undefined),
        detail: `+${deltaMb.toFixed(0)} MB; ${fmtMs(row.ms)} vs ${fmtMs(limitMs)} ms`,
      };
    }
    case 'W5':
      return {
        target: 'peak RSS < 300 MB',
        met: row.status === 'ok' ? row.peakKb / MB < 300 : undefined,
        detail: `${(row.peakKb / MB).toFixed(0)} MB`,
      };
    case 'W6':
      return row.contender === 'threads'
        ? { target: '< 100 ms', met: row.ms < 100, detail: `${fmtMs(row.ms)} ms` }
        : { target: '(target is for threads)', met: undefined, detail: `${fmtMs(row.ms)} ms` };
  }
}

function renderTable(rows: Row[]): string {
  const header =
    '| workload | contender | wall ms, median (min–max) | tasks/s | vs plain loop | vs best peer | peak RSS MB | target (joblib-ts rows) | met |';
  const out = [header, '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | :---: |'];
  for (const row of rows) {
    const sameWorkload = rows.filter((r) => r.workload === row.workload);
    const plain = sameWorkload.find((r) => r.contender === 'plain');
    const peers = sameWorkload.filter((r) => isPeer(r.contender) && r.status === 'ok');
    const bestPeer = peers.length > 0 ? Math.max(...peers.map(throughput)) : undefined;
    const isJoblib = row.contender === 'threads' || row.contender === 'processes';
    const label = CONTENDER_LABELS[row.contender];
    if (row.status === 'error') {
      out.push(`| ${row.workload} | ${label} | error: ${row.note ?? ''} | | | | | | ✘ |`);
      continue;
    }
    const wall = `${fmtMs(row.ms)} (${fmtMs(row.minMs)}–${fmtMs(row.maxMs)})`;
    // Throughput says something for the many-task rows only.
    const rate = ['W1', 'W3', 'W5'].includes(row.workload) ? fmtRate(throughput(row) * 1000) : '';
    const vsPlain =
      plain && row.contender !== 'plain' && row.workload !== 'W6' ? fmtX(plain.ms / row.ms) : '';
    const vsPeer =
      bestPeer && !isPeer(row.contender) && row.contender !== 'plain' ? fmtX(throughput(row) / bestPeer) : '';
    let peak = (row.peakKb / MB).toFixed(0);
    if (row.baselineKb !== undefined && row.workload === 'W4') {
      peak += ` (+${((row.peakKb - row.baselineKb) / MB).toFixed(0)})`;
    }
    let target = '';
    let met = '';
    if (isJoblib) {
      const v = verdict(row, sameWorkload);
      target = `${v.target}: ${v.detail}`;
      met = v.met === undefined ? '–' : v.met ? '✔' : '✘';
    }
    const checkMismatch =
      plain?.check !== undefined &&
      row.check !== undefined &&
      row.tasks === plain.tasks &&
      row.check !== plain.check;
    const notes = [
      row.status === 'na' ? `n/a: ${row.note ?? ''}` : row.note,
      checkMismatch ? `RESULTS DIFFER from the plain loop (${row.check} vs ${plain?.check})` : undefined,
    ].filter(Boolean);
    // A crashed cell's note is a line of its stderr, which may hold '|': it would split the table's row.
    const wallCell = notes.length > 0 ? `${wall} — ${notes.join('; ').replaceAll('|', '/')}` : wall;
    if (row.status === 'na') met = 'n/a';
    out.push(
      `| ${row.workload} | ${label} | ${wallCell} | ${rate} | ${vsPlain} | ${vsPeer} | ${peak} | ${target} | ${met} |`,
    );
  }
  return out.join('\n');
}

const QUOTED = `Reference, quoted from issue 3 (measured earlier on this machine kind, not in this run): Python joblib
about 230,000 trivial tasks/s with a warm pool and 1.91x on 2,000 x 1 ms tasks; 20,000 trivial tasks
take about 15 ms in a plain loop, 1.2 s through piscina (about 17,000 tasks/s), 1.5 s through tinypool,
1.6 s through workerpool; 2,000 x 1 ms tasks reach about 1.5x with any Node pool; 16 convolutions of
size 40,000 reach 1.70x to 1.81x.`;

// ---------------------------------------------------------------- main

async function profile(specs: string, spinIterations: number): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const sections: string[] = [];
  for (const spec of specs.split(',')) {
    const [workload, contender] = spec.split(':') as [WorkloadId, ContenderId];
    if (!WORKLOADS.includes(workload) || !CONTENDERS.includes(contender)) {
      console.error(`--profile: expected WORKLOAD:CONTENDER such as W1:threads; got ${spec}`);
      process.exit(2);
    }
    const dir = join('/tmp', 'joblib-ts-bench-profiles', `${workload}-${contender}-${stamp}`);
    mkdirSync(dir, { recursive: true });
    const result = await runCell(workload, contender, spinIterations, [
      '--cpu-prof',
      `--cpu-prof-dir=${dir}`,
      '--cpu-prof-interval=100',
    ]);
    const lines = [
      `### ${workload} × ${contender}: ${fmtMs(result.ms)} ms (${result.status}), profiles in ${dir}`,
    ];
    if (result.windowUs) lines.push('', 'Only the samples of the timed part are counted.');
    for (const file of profileFiles(dir)) {
      const summary = summarizeProfile(file, 15, result.windowUs);
      if (summary.totalMs > 0) lines.push('', formatSummary(summary));
    }
    const text = lines.join('\n');
    console.log(`${text}\n`);
    sections.push(text);
  }
  const file = outFile.replace(/\.md$/, '.profile.md');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${sections.join('\n\n')}\n`);
  formatMarkdown(file);
  console.log(`written to ${file}`);
}

async function main(): Promise<void> {
  checkPeerCopies();
  const spinIterations = Number(flag('spin-iterations') ?? calibrateSpin());
  if (profileSpecs) {
    await profile(profileSpecs, spinIterations);
    return;
  }
  const started = new Date();
  console.error(
    `joblib-ts parallel dispatch bench: ${workloads.join(',')} × ${contenders.join(',')}, ${reps} reps; ` +
      `${cores} cores, Node ${process.version}, load ${loadBefore}; spin1ms = ${spinIterations} iterations`,
  );
  const results = new Map<string, Measured[]>();
  const t0 = performance.now();
  for (let rep = 1; rep <= reps; rep++) {
    for (const workload of workloads) {
      for (const contender of contenders) {
        const r = await runCell(workload, contender, spinIterations);
        const key = `${workload}:${contender}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        const shown =
          r.status === 'error' ? `error ${r.note}` : `${fmtMs(r.ms)} ms${r.status === 'na' ? ' (n/a)' : ''}`;
        console.error(`  rep ${rep}/${reps} ${workload} ${contender.padEnd(10)} ${shown}  [load ${load()}]`);
      }
    }
  }
  const rows: Row[] = [];
  for (const workload of workloads) {
    for (const contender of contenders) {
      rows.push(summarize(workload, contender, results.get(`${workload}:${contender}`) ?? []));
    }
  }
  const minutes = (performance.now() - t0) / 60_000;
  const loadAfter = load();
  const notes = [
    `Run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${minutes.toFixed(1)} min · ${built ? 'built JavaScript (tsc), plain node' : 'TypeScript sources under tsx'} · ${cores} cores (${cpuModel}) · Node ${process.version} · ` +
      `piscina ${packageVersion('piscina')}, tinypool ${packageVersion('tinypool')}, workerpool ${packageVersion('workerpool')} · ` +
      `${WORKERS} workers per pool · medians of ${reps} repetitions, each cell in a fresh process · load average (1/5/15 min) ${loadBefore} before, ${loadAfter} after`,
    '',
    'Workloads:',
    ...workloads.map((w) => `- ${WORKLOAD_TITLES[w]}`),
    '',
    `Notes: W3's 1 ms task is a fixed ${spinIterations.toLocaleString('en-US')} iterations of integer work (calibrated to 1 ms ` +
      'on the main thread at the start of the run), the same for every contender. Peers run JavaScript copies of the ' +
      'task functions (bench/peers/), checked to compute the same results. ' +
      `Peers on W5 run ${w5PeerTasks.toLocaleString('en-US')} tasks, not ${SIZES.w5Tasks.toLocaleString('en-US')} ` +
      '(at their ~20,000 tasks/s the full count would take minutes per cell; their memory is flat anyway): tasks/s is comparable, wall time is not. ' +
      'Peers on W4 receive the array by structured clone (their default; a transfer would move it away after the first task). ' +
      "Peak RSS: the process's own maxRSS, or for worker processes the sampled PSS of the whole process tree; W4 also shows " +
      'the rise over the baseline taken just before the timing (array allocated, pool warm).',
    '',
    renderTable(rows),
    '',
    QUOTED,
  ];
  const markdown = notes.join('\n');
  console.log(markdown);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${markdown}\n`);
  formatMarkdown(outFile);
  console.error(`\nwritten to ${outFile}`);
}

await main();
