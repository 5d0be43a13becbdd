/** The experiment's written results: times.csv, times.json, index.html, and a plain-text summary. */
import type { RenderedFigure } from './charts.ts';
import type { Cell, ExperimentResult } from './types.ts';

export const CSV_COLUMNS = [
  'size',
  'nJobs',
  'seconds',
  'minSeconds',
  'maxSeconds',
  'repeats',
  'tasksPerCell',
  'backend',
  'usableCpus',
  'logicalCpus',
  'cpuModel',
  'node',
  'platform',
  'loadAverage',
] as const;

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One row per cell, in the grid's order; machine columns repeat on every row so each row stands alone. */
export function toCsv(result: ExperimentResult): string {
  const { params, machine } = result;
  const lines = [CSV_COLUMNS.join(',')];
  for (const c of result.cells) {
    const row = [
      c.size,
      c.nJobs,
      c.seconds.toFixed(6),
      Math.min(...c.runs).toFixed(6),
      Math.max(...c.runs).toFixed(6),
      c.runs.length,
      params.tasksPerCell,
      params.backend,
      machine.usableCpus,
      machine.logicalCpus,
      machine.cpuModel,
      machine.node,
      `${machine.platform}-${machine.arch}`,
      machine.loadAverage.toFixed(2),
    ];
    lines.push(row.map(csvField).join(','));
  }
  return `${lines.join('\n')}\n`;
}

export function toJson(result: ExperimentResult, figureNames: string[]): string {
  return `${JSON.stringify({ ...result, figures: figureNames.flatMap((n) => [`${n}.svg`, `${n}.png`]) }, null, 2)}\n`;
}

export interface SizeSummary {
  size: number;
  bestNJobs: number;
  /** time(nJobs = 1) / time(bestNJobs). */
  bestSpeedup: number;
}

/** For each size, the nJobs with the shortest time and its speedup over one job. */
export function summarize(cells: Cell[]): SizeSummary[] {
  const bySize = new Map<number, Cell[]>();
  for (const c of cells) bySize.set(c.size, [...(bySize.get(c.size) ?? []), c]);
  const out: SizeSummary[] = [];
  for (const [size, row] of bySize) {
    const one = row.find((c) => c.nJobs === 1);
    const best = row.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    out.push({ size, bestNJobs: best.nJobs, bestSpeedup: one ? one.seconds / best.seconds : Number.NaN });
  }
  return out;
}

const number = new Intl.NumberFormat('en-US');

/** A few sentences that answer the seed's question for this machine. */
export function conclusion(result: ExperimentResult): string[] {
  const summary = summarize(result.cells).filter((s) => Number.isFinite(s.bestSpeedup));
  if (summary.length === 0) return ['No nJobs = 1 cells, so no speedup to report.'];
  const top = summary.reduce((a, b) => (b.bestSpeedup > a.bestSpeedup ? b : a));
  const smallest = summary[0]!;
  const cpus = result.machine.usableCpus;
  const lines = [
    `Best speedup: ${top.bestSpeedup.toFixed(2)}× with nJobs = ${top.bestNJobs} at size ${number.format(top.size)} (${cpus} usable CPU${cpus === 1 ? '' : 's'}).`,
    `Smallest size ${number.format(smallest.size)}: best nJobs = ${smallest.bestNJobs}, ${smallest.bestSpeedup.toFixed(2)}× over one job.`,
  ];
  if (top.bestSpeedup > cpus * 1.05) {
    lines.push(
      `That is more than the ${cpus} usable CPU${cpus === 1 ? '' : 's'} can give: other programs were using the CPUs during the run, so the timings are noisy (rerun with --no-cache on a quiet machine).`,
    );
  }
  const paying = summary.filter((s) => s.bestNJobs > 1 && s.bestSpeedup >= 1.2);
  if (paying.length === 0) lines.push('Parallelism did not pay (less than 1.2×) at any size of this grid.');
  else if (paying.length < summary.length) {
    lines.push(`Parallelism pays (1.2× or more) from size ${number.format(paying[0]!.size)} on.`);
  } else lines.push('Parallelism pays (1.2× or more) at every size of this grid.');
  return lines;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function table(result: ExperimentResult): string {
  const { sizes, nJobsValues } = result.params;
  const seconds = new Map(result.cells.map((c) => [`${c.size}/${c.nJobs}`, c.seconds]));
  const head = nJobsValues.map((n) => `<th scope="col">${n}</th>`).join('');
  const body = sizes
    .map((size) => {
      const one = seconds.get(`${size}/1`);
      const cells = nJobsValues
        .map((n) => {
          const s = seconds.get(`${size}/${n}`);
          if (s === undefined) return '<td>–</td>';
          const speedup =
            one === undefined || n === 1 ? '' : ` <span class="speedup">(${(one / s).toFixed(2)}×)</span>`;
          return `<td>${s.toFixed(3)}${speedup}</td>`;
        })
        .join('');
      return `<tr><th scope="row">${number.format(size)}</th>${cells}</tr>`;
    })
    .join('\n');
  return `<table>
<caption>Median time in seconds for ${result.params.tasksPerCell} convolutions (speedup over nJobs = 1)</caption>
<thead><tr><th scope="col">Size \\ nJobs</th>${head}</tr></thead>
<tbody>
${body}
</tbody>
</table>`;
}

export function toHtml(result: ExperimentResult, figures: RenderedFigure[]): string {
  const { params, machine } = result;
  const images = figures
    .map(
      (f) => `<figure>
<a href="${f.name}.png"><img src="${f.name}.svg" width="${f.width}" height="${f.height}" alt="${escapeHtml(f.title)}"></a>
<figcaption>${escapeHtml(f.title)} (<a href="${f.name}.svg">SVG</a>, <a href="${f.name}.png">PNG</a>)</figcaption>
</figure>`,
    )
    .join('\n');
  const conclusions = conclusion(result)
    .map((l) => `<li>${escapeHtml(l)}</li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>joblib-ts experiment: when does parallelism pay?</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #222; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figure { margin: 2rem 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
caption { text-align: left; margin-bottom: 0.5rem; }
.speedup { color: #666; }
dt { font-weight: bold; }
</style>
</head>
<body>
<h1>When does parallelism pay?</h1>
<p>The seed notebook's experiment, run by <code>joblib-ts experiment</code>: each cell times
${params.tasksPerCell} convolutions of two random arrays of the given size, run by <code>Parallel</code> with
nJobs workers (${escapeHtml(params.backend)} backend), median of ${params.repeats} run${params.repeats === 1 ? '' : 's'}.</p>
<dl>
<dt>Machine</dt><dd>${escapeHtml(machine.description)}</dd>
<dt>Host</dt><dd>${escapeHtml(machine.hostname)}, ${escapeHtml(machine.osRelease)}, load average ${machine.loadAverage.toFixed(2)} at the start</dd>
<dt>Date</dt><dd>${escapeHtml(result.date)} (the whole run took ${result.totalSeconds.toFixed(1)} s)</dd>
<dt>Data</dt><dd><a href="times.csv">times.csv</a>, <a href="times.json">times.json</a></dd>
</dl>
<h2>What it shows</h2>
<ul>
${conclusions}
</ul>
${images}
<h2>Timings</h2>
${table(result)}
</body>
</html>
`;
}
