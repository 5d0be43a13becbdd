/**
 * `joblib-ts experiment`: the seed notebook's closing experiment as a command. Times a grid of
 * convolution sizes × nJobs, caches the cell timings in the output folder, and writes times.csv,
 * times.json, three figures (SVG and PNG) and index.html.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { cpuCount } from '../cpu.ts';
import { importExtra } from '../extras.ts';
import { createProgressReporter } from '../progress/bar.ts';
import { memoryCellCache } from './experiment/cache.ts';
import { runGrid, type Timer } from './experiment/grid.ts';
import { busyWarning, describeMachine } from './experiment/machine.ts';
import { conclusion, toCsv, toHtml, toJson } from './experiment/report.ts';
import { BACKENDS, type BackendName, type ExperimentResult, type GridParams } from './experiment/types.ts';

export const DEFAULT_SIZES = '5000:50000:5000';
/** The seed's first four sizes (the 2×2 figure's panels), two jobs, one run: a few seconds on 2 cores. */
export const QUICK = { sizes: '5000:20000:5000', maxJobs: 2, repeats: 1 } as const;
export const DEFAULT_OUT = './joblib-ts-report';

export interface ExperimentOptions {
  sizes: number[];
  maxJobs: number;
  repeats: number;
  backend: BackendName;
  /** Output folder. */
  out: string;
  /** Read and write cell timings in `<out>/cache`. */
  cache: boolean;
  /** Show a progress bar (TTY) or progress lines (elsewhere) on stderr. */
  progress: boolean;
}

export interface ExperimentIo {
  /** Times the cells; default: the real `Parallel` timer. */
  timer?: Timer;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream | NodeJS.WritableStream;
}

export interface ExperimentOutput {
  result: ExperimentResult;
  /** Absolute paths of the files written. */
  files: string[];
}

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}

/** Parses `5000,10000,20000` or the inclusive range `start:stop:step` (`5000:50000:5000`). */
export function parseSizes(value: string): number[] {
  const bad = () =>
    new InvalidArgumentError(
      'expected positive integers like 5000,10000,20000 or a range start:stop:step like 5000:50000:5000.',
    );
  const text = value.replaceAll('_', '').trim();
  let sizes: number[];
  if (text.includes(':')) {
    const parts = text.split(':').map(Number);
    const [start, stop, step] = parts;
    if (parts.length !== 3 || start === undefined || stop === undefined || step === undefined) throw bad();
    if (![start, stop, step].every((n) => Number.isInteger(n) && n > 0) || stop < start) throw bad();
    sizes = [];
    for (let s = start; s <= stop; s += step) sizes.push(s);
  } else {
    sizes = text.split(',').map((s) => Number(s.trim()));
  }
  if (sizes.length === 0 || !sizes.every((n) => Number.isInteger(n) && n > 0)) throw bad();
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/** Runs the grid and writes every file of the report; returns what it wrote. */
export async function runExperiment(
  options: ExperimentOptions,
  io: ExperimentIo = {},
): Promise<ExperimentOutput> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const out = resolve(options.out);
  const params: GridParams = {
    sizes: options.sizes,
    nJobsValues: Array.from({ length: options.maxJobs }, (_, i) => i + 1),
    tasksPerCell: options.maxJobs,
    repeats: options.repeats,
    backend: options.backend,
  };
  const machine = describeMachine();
  const cache = options.cache ? memoryCellCache(join(out, 'cache')) : undefined;
  const totalCells = params.sizes.length * params.nJobsValues.length;
  stderr.write(
    `Timing ${params.sizes.length} sizes × nJobs 1..${options.maxJobs} (${totalCells} cells, ${params.tasksPerCell} convolutions each, ` +
      `${params.repeats} repeat${params.repeats === 1 ? '' : 's'}, ${params.backend} backend) on ${machine.description}\n`,
  );
  // Before minutes of measuring: the charts need the 'experiment' extra.
  const { renderFigures } = await importExtra('experiment', () => import('./experiment/charts.ts'));
  const busy = busyWarning(machine);
  if (busy) stderr.write(`${busy}\n`);
  const started = performance.now();
  const date = new Date().toISOString();
  const timer = io.timer ?? (await import('./experiment/measure.ts')).createParallelTimer();
  const progress = options.progress
    ? createProgressReporter({ stream: stderr, label: 'experiment' })
    : undefined;
  const cells = await runGrid(params, {
    timer,
    ...(cache ? { cache } : {}),
    ...(progress ? { progress } : {}),
  });
  const result: ExperimentResult = { params, cells, machine, date, totalSeconds: 0 };

  const figures = await renderFigures(result);
  result.totalSeconds = (performance.now() - started) / 1000;
  await mkdir(out, { recursive: true });
  const files: [string, string | Buffer][] = [
    ['times.csv', toCsv(result)],
    [
      'times.json',
      toJson(
        result,
        figures.map((f) => f.name),
      ),
    ],
    ...figures.flatMap((f): [string, string | Buffer][] => [
      [`${f.name}.svg`, f.svg],
      [`${f.name}.png`, f.png],
    ]),
    ['index.html', toHtml(result, figures)],
  ];
  for (const [name, content] of files) await writeFile(join(out, name), content);

  const fromCache = cells.filter((c) => c.cached).length;
  if (cache && fromCache > 0) {
    stdout.write(
      `Read ${fromCache} of ${cells.length} cell timings from the cache in ${cache.location} (--no-cache measures them again).\n`,
    );
  }
  stdout.write(`Wrote ${files.map(([name]) => name).join(', ')} to ${out}\n`);
  for (const line of conclusion(result)) stdout.write(`${line}\n`);
  stdout.write(`Open ${join(out, 'index.html')} to see the figures.\n`);
  return { result, files: files.map(([name]) => join(out, name)) };
}

interface RawOptions {
  sizes: number[];
  maxJobs: number;
  repeats: number;
  backend: BackendName;
  out: string;
  cache: boolean;
  progress: boolean;
  quick: boolean;
}

export function experimentCommand(): Command {
  const command = new Command('experiment')
    .summary("time the seed's grid of task sizes × nJobs and plot when parallelism pays")
    .description(
      [
        "Runs the seed notebook's experiment: for every nJobs in 1..max-jobs and every size, times max-jobs " +
          'convolutions of two random arrays of that size, run by Parallel with nJobs workers (an untimed ' +
          'warm-up starts the workers first).',
        'Writes to --out: times.csv and times.json (size, nJobs, median seconds, repeats, machine), three ' +
          'figures as SVG and PNG (times-by-njobs: time vs nJobs for the first four sizes; times-by-size: ' +
          'time vs size, one line per nJobs; speedup: speedup vs nJobs against the ideal line), and index.html ' +
          'showing them with the table and the machine.',
        'Cell timings are cached in <out>/cache: a rerun with the same parameters reads them back and says so.',
      ].join('\n\n'),
    )
    .addOption(
      new Option('--sizes <list>', 'sizes as a list (5000,10000) or an inclusive range start:stop:step')
        .argParser(parseSizes)
        .default(parseSizes(DEFAULT_SIZES), DEFAULT_SIZES),
    )
    .addOption(
      new Option('--max-jobs <n>', 'largest nJobs, and the number of convolutions in every cell')
        .argParser(positiveInteger('--max-jobs'))
        .default(cpuCount(), `the usable CPUs, ${cpuCount()} here`),
    )
    .option('--repeats <n>', 'runs per cell; the median is reported', positiveInteger('--repeats'), 3)
    .addOption(
      new Option('--backend <name>', 'Parallel backend to time').choices(BACKENDS).default('threads'),
    )
    .option('--out <dir>', 'output folder', DEFAULT_OUT)
    .option(
      '--quick',
      `a small grid that runs in seconds: --sizes ${QUICK.sizes} --max-jobs ${QUICK.maxJobs} --repeats ${QUICK.repeats} (explicit options win)`,
    )
    .option('--no-cache', 'measure every cell, neither reading nor writing the cache')
    .option('--no-progress', 'no progress bar (TTY) or progress lines (elsewhere) on stderr')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ joblib-ts experiment --quick\n' +
        '  $ joblib-ts experiment --sizes 10000:80000:10000 --max-jobs 4 --repeats 5 --out report/\n' +
        '  $ joblib-ts experiment --backend processes --no-cache',
    )
    .action(async (raw: RawOptions, cmd: Command) => {
      const explicit = (name: string) => cmd.getOptionValueSource(name) === 'cli';
      const quick = raw.quick;
      await runExperiment({
        sizes: quick && !explicit('sizes') ? parseSizes(QUICK.sizes) : raw.sizes,
        maxJobs: quick && !explicit('maxJobs') ? QUICK.maxJobs : raw.maxJobs,
        repeats: quick && !explicit('repeats') ? QUICK.repeats : raw.repeats,
        backend: raw.backend,
        out: raw.out,
        cache: raw.cache,
        progress: raw.progress,
      });
    });
  return command;
}
