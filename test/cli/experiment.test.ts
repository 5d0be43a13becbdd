import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { svgSize } from '../../src/cli/experiment/charts.ts';
import { median, runGrid, type Timer } from '../../src/cli/experiment/grid.ts';
import { busyWarning, describeMachine } from '../../src/cli/experiment/machine.ts';
import { CSV_COLUMNS, conclusion } from '../../src/cli/experiment/report.ts';
import { parseSizes, runExperiment } from '../../src/cli/experiment.ts';
import { createProgram } from '../../src/cli/program.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const FIGURES = ['times-by-njobs', 'times-by-size', 'speedup'];

function cli(args: string[]) {
  return run(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, timeout: 120_000 });
}

/** Parses the simple CSV the command writes (quoted fields may hold commas). */
function parseCsv(text: string): Record<string, string>[] {
  const [header, ...rows] = text.trimEnd().split('\n');
  const split = (line: string) =>
    [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(?:,|$)/g)].map((m) => m[1]!).slice(0, -1);
  const names = split(header!);
  return rows.map((row) => Object.fromEntries(split(row).map((v, i) => [names[i], v.replace(/^"|"$/g, '')])));
}

/** A timer that "takes" size² / nJobs nanoseconds, and counts its calls. */
function fakeTimer(): Timer & { calls: number; closed: number } {
  return {
    calls: 0,
    closed: 0,
    async time(size, nJobs) {
      this.calls += 1;
      return (size * size * 1e-9) / nJobs + 0.01;
    },
    async close() {
      this.closed += 1;
    },
  };
}

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

describe('joblib-ts experiment --quick (real Parallel, end to end)', () => {
  let dir = '';
  let first = { stdout: '', stderr: '' };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'joblib-ts-experiment-'));
    first = await cli(['experiment', '--quick', '--out', dir]);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every file of the report', async () => {
    const names = await readdir(dir);
    for (const name of [
      'times.csv',
      'times.json',
      'index.html',
      ...FIGURES.flatMap((f) => [`${f}.svg`, `${f}.png`]),
    ]) {
      assert.ok(names.includes(name), `${name} missing from ${names.join(', ')}`);
    }
    assert.match(first.stdout, /Wrote times\.csv, times\.json, .*index\.html/);
    assert.match(first.stderr, /\[experiment\]: Done {3}8 out of {3}8 \| elapsed: .* finished/);
  });

  it('times the quick grid: 4 sizes × nJobs 1..2, one repeat, positive seconds, machine columns', async () => {
    const text = await readFile(join(dir, 'times.csv'), 'utf8');
    assert.equal(text.split('\n')[0], CSV_COLUMNS.join(','));
    const rows = parseCsv(text);
    assert.equal(rows.length, 8);
    assert.deepEqual(
      rows.map((r) => `${r.size}/${r.nJobs}`),
      ['5000/1', '5000/2', '10000/1', '10000/2', '15000/1', '15000/2', '20000/1', '20000/2'],
    );
    for (const r of rows) {
      const seconds = Number(r.seconds);
      assert.ok(seconds > 0 && seconds < 60, `seconds ${r.seconds}`);
      assert.equal(Number(r.minSeconds), seconds);
      assert.equal(r.repeats, '1');
      assert.equal(r.tasksPerCell, '2');
      assert.equal(r.backend, 'threads');
      assert.ok(Number(r.usableCpus) >= 1);
      assert.ok((r.cpuModel ?? '').length > 0);
      assert.equal(r.node, process.version);
    }
    const json = JSON.parse(await readFile(join(dir, 'times.json'), 'utf8'));
    assert.equal(json.cells.length, 8);
    assert.deepEqual(
      json.cells.map((c: { seconds: number }) => c.seconds.toFixed(6)),
      rows.map((r) => r.seconds),
    );
    assert.equal(json.machine.node, process.version);
    assert.deepEqual(json.params, {
      sizes: [5000, 10000, 15000, 20000],
      nJobsValues: [1, 2],
      tasksPerCell: 2,
      repeats: 1,
      backend: 'threads',
    });
  });

  it('renders PNGs that decode at twice the size of their SVGs', async () => {
    for (const name of FIGURES) {
      const svg = await readFile(join(dir, `${name}.svg`), 'utf8');
      const { width, height } = svgSize(svg);
      const png = PNG.sync.read(await readFile(join(dir, `${name}.png`)));
      assert.equal(png.width, Math.round(width * 2), name);
      assert.equal(png.height, Math.round(height * 2), name);
      assert.ok(png.width >= 800 && png.height >= 600, `${name} is ${png.width}×${png.height}`);
      // Not a blank image: some pixels are dark (text, lines).
      let dark = 0;
      for (let i = 0; i < png.data.length; i += 4) if (png.data[i]! < 100) dark += 1;
      assert.ok(dark > 1000, `${name} has only ${dark} dark pixels`);
    }
  });

  it('writes an index.html that shows the figures, the table and the machine', async () => {
    const html = await readFile(join(dir, 'index.html'), 'utf8');
    for (const name of FIGURES) {
      assert.match(html, new RegExp(`<img src="${name}\\.svg"`));
      assert.match(html, new RegExp(`href="${name}\\.png"`));
    }
    assert.match(html, /href="times\.csv"/);
    assert.match(html, /<table>/);
    assert.equal((html.match(/<tr><th scope="row">/g) ?? []).length, 4);
    assert.match(html, /<dt>Machine<\/dt><dd>\d+ CPUs/);
  });

  it('reads the timings back from the cache on a rerun with the same parameters, and says so', async () => {
    const before = await readFile(join(dir, 'times.csv'), 'utf8');
    const second = await cli(['experiment', '--quick', '--out', dir, '--no-progress']);
    assert.match(
      second.stdout,
      /Read 8 of 8 cell timings from the cache in .*cache \(--no-cache measures them again\)/,
    );
    assert.doesNotMatch(second.stderr, /\[experiment\]/);
    const after = await readFile(join(dir, 'times.csv'), 'utf8');
    assert.deepEqual(
      parseCsv(after).map((r) => r.seconds),
      parseCsv(before).map((r) => r.seconds),
    );
  });
});

describe('experiment with a fake timer', () => {
  it('measures every cell, then reads them all from the cache, and --no-cache measures again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'joblib-ts-experiment-fake-'));
    try {
      const options = {
        sizes: [1000, 2000, 3000, 4000, 5000],
        maxJobs: 3,
        repeats: 2,
        backend: 'threads' as const,
        out: dir,
        cache: true,
        progress: false,
      };
      const stdout = new Sink();
      const stderr = new Sink();
      const timer = fakeTimer();
      const { result, files } = await runExperiment(options, { timer, stdout, stderr });
      assert.equal(timer.calls, 5 * 3 * 2);
      assert.equal(timer.closed, 1);
      assert.equal(files.length, 9);
      assert.ok(result.cells.every((c) => !c.cached && c.runs.length === 2));
      assert.doesNotMatch(stdout.text, /from the cache/);

      const again = fakeTimer();
      const second = await runExperiment(options, { timer: again, stdout: new Sink(), stderr: new Sink() });
      assert.equal(again.calls, 0);
      assert.ok(second.result.cells.every((c) => c.cached));

      const fresh = fakeTimer();
      const out = new Sink();
      await runExperiment({ ...options, cache: false }, { timer: fresh, stdout: out, stderr: new Sink() });
      assert.equal(fresh.calls, 30);
      assert.doesNotMatch(out.text, /cache/);

      // Only the first four sizes get a panel; the axes have titles with units and integer nJobs ticks.
      const byNJobs = await readFile(join(dir, 'times-by-njobs.svg'), 'utf8');
      for (const size of ['1,000', '2,000', '3,000', '4,000'])
        assert.ok(byNJobs.includes(`Size = ${size}`), size);
      assert.ok(!byNJobs.includes('Size = 5,000'));
      assert.ok(byNJobs.includes('Time (s)') && byNJobs.includes('nJobs (workers)'));
      const bySize = await readFile(join(dir, 'times-by-size.svg'), 'utf8');
      assert.ok(bySize.includes('>nJobs</text>'), 'the legend is titled nJobs');
      assert.ok(bySize.includes('Convolution size (elements in each array)'));
      const speedup = await readFile(join(dir, 'speedup.svg'), 'utf8');
      assert.ok(speedup.includes('ideal (= nJobs)'));
      // Vega labels each axis group for screen readers; the x axis's text is between the two labels.
      const xAxis = speedup.slice(
        speedup.indexOf('aria-label="X-axis'),
        speedup.indexOf('aria-label="Y-axis'),
      );
      const ticks = [...xAxis.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
      assert.deepEqual(ticks, ['1', '2', '3', 'nJobs (workers)'], 'integer nJobs ticks only');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs the grid size by size, nJobs 1..max within a size, and reports progress per cell', async () => {
    const updates: string[] = [];
    const cells = await runGrid(
      { sizes: [10, 20], nJobsValues: [1, 2], tasksPerCell: 2, repeats: 3, backend: 'sequential' },
      {
        timer: fakeTimer(),
        progress: {
          update: (done, total) => updates.push(`${done}/${total}`),
          finish: (o) => updates.push(o),
        },
      },
    );
    assert.deepEqual(
      cells.map((c) => [c.size, c.nJobs]),
      [
        [10, 1],
        [10, 2],
        [20, 1],
        [20, 2],
      ],
    );
    assert.deepEqual(updates, ['1/4', '2/4', '3/4', '4/4', 'done']);
  });

  it('finishes the progress as failed and closes the timer when a cell throws', async () => {
    const outcomes: string[] = [];
    const timer = fakeTimer();
    timer.time = async () => {
      throw new Error('boom');
    };
    await assert.rejects(
      runGrid(
        { sizes: [10], nJobsValues: [1], tasksPerCell: 1, repeats: 1, backend: 'sequential' },
        { timer, progress: { update: () => {}, finish: (o) => outcomes.push(o) } },
      ),
      /boom/,
    );
    assert.deepEqual(outcomes, ['failed']);
    assert.equal(timer.closed, 1);
  });

  it('warns when the load average says other programs keep the CPUs busy', () => {
    const machine = { ...describeMachine(), usableCpus: 2 };
    const params = {
      sizes: [10],
      nJobsValues: [1, 2],
      tasksPerCell: 2,
      repeats: 1,
      backend: 'threads' as const,
    };
    const cell = (nJobs: number, seconds: number) => ({
      size: 10,
      nJobs,
      seconds,
      runs: [seconds],
      cached: false,
    });
    const result = (two: number) => ({
      params,
      machine,
      date: '',
      totalSeconds: 0,
      cells: [cell(1, 1), cell(2, two)],
    });
    assert.equal(conclusion(result(0.6)).length, 3);
    assert.match(conclusion(result(0.4)).join('\n'), /more than the 2 usable CPUs can give/);
    assert.equal(busyWarning({ ...machine, loadAverage: 0.4 }), undefined);
    assert.match(busyWarning({ ...machine, loadAverage: 3.5 }) ?? '', /busy \(load average 3\.5 on 2 CPUs\)/);
  });

  it('parses sizes as lists and inclusive ranges', () => {
    assert.deepEqual(parseSizes('5000:20000:5000'), [5000, 10000, 15000, 20000]);
    assert.deepEqual(parseSizes('300, 100,200,100'), [100, 200, 300]);
    assert.deepEqual(parseSizes('10_000'), [10000]);
    for (const bad of ['', 'a', '0', '5:1:1', '1:10', '1.5', '-3'])
      assert.throws(() => parseSizes(bad), /positive integers/, bad);
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
  });
});

describe('joblib-ts --help', () => {
  /** The program, parsed in this process: commander throws instead of exiting, and output is kept. */
  async function parseInProcess(
    args: string[],
  ): Promise<{ out: string; err: string; error?: { exitCode: number } }> {
    const program = createProgram();
    let out = '';
    let err = '';
    for (const command of [program, ...program.commands]) {
      command.exitOverride().configureOutput({
        writeOut: (text) => {
          out += text;
        },
        writeErr: (text) => {
          err += text;
        },
      });
    }
    try {
      await program.parseAsync(args, { from: 'user' });
      return { out, err };
    } catch (error) {
      return { out, err, error: error as { exitCode: number } };
    }
  }

  it('documents the experiment command and every option', async () => {
    const top = await parseInProcess(['--help']);
    assert.match(top.out, /Usage: joblib-ts/);
    assert.match(top.out, /experiment \[options\]\s+time the seed's grid/);
    const help = await parseInProcess(['experiment', '--help']);
    assert.equal(help.error?.exitCode, 0);
    const stdout = help.out.replace(/\s+/g, ' ');
    for (const option of [
      '--sizes <list>',
      '--max-jobs <n>',
      '--repeats <n>',
      '--backend <name>',
      '--out <dir>',
      '--quick',
      '--no-cache',
      '--no-progress',
    ]) {
      assert.ok(stdout.includes(option), `${option} in ${stdout}`);
    }
    assert.match(stdout, /"threads", "processes", "sequential"/);
    assert.match(stdout, /default: 5000:50000:5000/);
  });

  it('rejects bad options with a message and a non-zero exit', async () => {
    const jobs = await parseInProcess(['experiment', '--max-jobs', '0']);
    assert.equal(jobs.error?.exitCode, 1);
    assert.match(jobs.err, /--max-jobs must be a positive integer/);
    const backend = await parseInProcess(['experiment', '--backend', 'gpu']);
    assert.equal(backend.error?.exitCode, 1);
    assert.match(backend.err, /Allowed choices are threads, processes, sequential/);
    const sizes = await parseInProcess(['experiment', '--sizes', '5:1:1']);
    assert.match(sizes.err, /expected positive integers/);
  });

  it('runs as an executable: from dist/ when built, else from the sources', async () => {
    const built = join(ROOT, 'dist/cli/main.js');
    const args = existsSync(built) ? [built] : ['--import', 'tsx', MAIN];
    const { stdout } = await run(process.execPath, [...args, '--version'], { cwd: ROOT });
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
    await assert.rejects(
      run(process.execPath, [...args, 'experiment', '--repeats', 'x'], { cwd: ROOT }),
      (error: { code: number; stderr: string }) => {
        assert.equal(error.code, 1);
        assert.match(error.stderr, /--repeats must be a positive integer/);
        return true;
      },
    );
  });
});
