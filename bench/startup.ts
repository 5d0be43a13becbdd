/**
 * Cold start as a new user meets it (issue 14, item 2): `npx tsx bench/startup.ts [--reps 7]`.
 *
 * Installs the built package (tsc output of src/) into a scratch project in /tmp, beside links to this
 * repository's node_modules (piscina, tsx), and runs `startup/program.mjs` there in a fresh process per
 * measurement, on plain `node` and under the `tsx` CLI (whose loader flags every worker used to inherit):
 *
 * - `cell`: the seed notebook's `Parallel({ nJobs: 8 })` over 10 × `delayed(Math.pow)(i, 2)`, threads;
 * - `processes`: the same on child processes;
 * - `wide`: the same with `nJobs: 1000`;
 * - `piscina`, `piscina-default`: piscina's cold start on the same 10 tasks, with 8 threads (min = max) and
 *   with its defaults.
 *
 * Each reports the milliseconds to the first result and to the last, from just before the pool is made,
 * and how many workers were started. Repetition-major, so that a burst of load does not land on one row.
 *
 * Then where one worker's start goes (`startup/worker-start.mjs`, run under tsx so that there are tsx
 * flags to inherit): a bare thread or process, the same inheriting tsx's loader flags, with joblib-ts's
 * built entry, and with tsx registered and a TypeScript module imported. Writes bench/results/startup.md.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const rootDir = dirname(benchDir);
const project = join('/tmp', 'joblib-ts-startup-bench');
const at = process.argv.indexOf('--reps');
const reps = at >= 0 ? Number(process.argv[at + 1]) : 7;

const MODES = ['cell', 'processes', 'wide', 'piscina', 'piscina-default'] as const;
type Mode = (typeof MODES)[number];
const RUNNERS = ['node', 'tsx'] as const;
type Runner = (typeof RUNNERS)[number];

interface Result {
  first: number;
  all: number;
  started: number;
  check: number;
}

/** The scratch project: joblib-ts as an installed, built package; the program; links to the other packages. */
function makeProject(): void {
  rmSync(project, { recursive: true, force: true });
  const installed = join(project, 'node_modules', 'joblib-ts');
  mkdirSync(installed, { recursive: true });
  const tsc = join(rootDir, 'node_modules', 'typescript', 'bin', 'tsc');
  const build = spawnSync(
    process.execPath,
    [tsc, '-p', join(rootDir, 'tsconfig.build.json'), '--outDir', join(installed, 'dist')],
    { cwd: rootDir, encoding: 'utf8' },
  );
  if (!existsSync(join(installed, 'dist', 'index.js'))) {
    console.error(`tsc did not build the package:\n${build.stdout}${build.stderr}`);
    process.exit(1);
  }
  copyFileSync(join(rootDir, 'package.json'), join(installed, 'package.json'));
  for (const name of readdirSync(join(rootDir, 'node_modules'))) {
    if (name.startsWith('.')) continue;
    symlinkSync(join(rootDir, 'node_modules', name), join(project, 'node_modules', name));
  }
  for (const file of ['program.mjs', 'peer-worker.mjs', 'worker-start.mjs', 'small-task.ts']) {
    copyFileSync(join(benchDir, 'startup', file), join(project, file));
  }
  writeFileSync(join(project, 'package.json'), '{ "type": "module", "private": true }\n');
}

function measure(runner: Runner, mode: Mode): Result {
  const tsxCli = join(rootDir, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  const args = runner === 'tsx' ? [tsxCli, 'program.mjs', mode] : ['program.mjs', mode];
  const child = spawnSync(process.execPath, args, { cwd: project, encoding: 'utf8', timeout: 120_000 });
  const line = child.stdout.split('\n').find((l) => l.startsWith('STARTUP-RESULT '));
  if (!line) throw new Error(`${runner} ${mode} gave no result:\n${child.stdout}${child.stderr}`);
  return JSON.parse(line.slice('STARTUP-RESULT '.length)) as Result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const ms = (v: number): string => (v < 100 ? v.toFixed(1) : v.toFixed(0));
const spread = (values: number[]): string =>
  `${ms(median(values))} (${ms(Math.min(...values))}–${ms(Math.max(...values))})`;

makeProject();
const loadBefore = loadavg().map((l) => l.toFixed(2));
const results = new Map<string, Result[]>();
for (let r = 0; r < reps; r++) {
  for (const runner of RUNNERS) {
    for (const mode of MODES) {
      const key = `${runner} ${mode}`;
      const list = results.get(key) ?? [];
      list.push(measure(runner, mode));
      results.set(key, list);
    }
  }
  process.stderr.write(`repetition ${r + 1}/${reps} done\n`);
}
const loadAfter = loadavg().map((l) => l.toFixed(2));

const rows = [
  '| runner | what | first result ms, median (min–max) | all 10 ms | workers started |',
  '| --- | --- | ---: | ---: | ---: |',
];
for (const runner of RUNNERS) {
  for (const mode of MODES) {
    const list = results.get(`${runner} ${mode}`) ?? [];
    const started = [...new Set(list.map((x) => x.started))].sort((a, b) => a - b).join(', ');
    rows.push(
      `| ${runner} | ${mode} | ${spread(list.map((x) => x.first))} | ${spread(list.map((x) => x.all))} | ${started} |`,
    );
  }
}
const targets: string[] = [];
for (const runner of RUNNERS) {
  const first = median((results.get(`${runner} cell`) ?? []).map((x) => x.first));
  const peer = Math.min(
    median((results.get(`${runner} piscina`) ?? []).map((x) => x.first)),
    median((results.get(`${runner} piscina-default`) ?? []).map((x) => x.first)),
  );
  const wide = results.get(`${runner} wide`) ?? [];
  const wideAll = Math.max(...wide.map((x) => x.all));
  const wideStarted = Math.max(...wide.map((x) => x.started));
  targets.push(
    `- ${runner}: cell first result ${ms(first)} ms (target < 300: ${first < 300 ? 'met' : 'NOT met'}), ` +
      `${(first / peer).toFixed(2)}x piscina's faster setup ${ms(peer)} ms (target <= 1.5x: ${first <= 1.5 * peer ? 'met' : 'NOT met'}); ` +
      `nJobs 1000 × 10 tasks: slowest ${ms(wideAll)} ms (target < 2000: ${wideAll < 2000 ? 'met' : 'NOT met'}), ` +
      `at most ${wideStarted} workers started (target <= 10: ${wideStarted <= 10 ? 'met' : 'NOT met'})`,
  );
}
const header =
  `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ` +
  `Node ${process.version}, ${reps} repetitions, load average before ${loadBefore.join(' / ')}, after ${loadAfter.join(' / ')}.`;
// Where one worker's start goes: each step alone, one worker at a time, medians.
const tsxCli = join(rootDir, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const steps = spawnSync(process.execPath, [tsxCli, 'worker-start.mjs', String(reps)], {
  cwd: project,
  encoding: 'utf8',
  timeout: 300_000,
});
const stepLine = steps.stdout.split('\n').find((l) => l.startsWith('WORKER-START '));
if (!stepLine) throw new Error(`worker-start.mjs gave no result:\n${steps.stdout}${steps.stderr}`);
const stepRows = [
  '| one worker, started alone | ms to its first message, median (min–max) |',
  '| --- | ---: |',
  ...Object.entries(JSON.parse(stepLine.slice('WORKER-START '.length)) as Record<string, number[]>).map(
    ([what, values]) => `| ${what} | ${spread(values)} |`,
  ),
];
const text = `# Cold start (issue 14, item 2)\n\n${header}\n\n${rows.join('\n')}\n\n${targets.join('\n')}\n\n## Where a worker's start goes\n\n${stepRows.join('\n')}\n`;
console.log(text);
const outFile = join(benchDir, 'results', 'startup.md');
writeFileSync(outFile, text);
const biome = join(rootDir, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
spawnSync(process.execPath, [biome, 'format', '--write', outFile], { cwd: rootDir, stdio: 'ignore' });
