/**
 * The experiment's three figures as Vega-Lite specs, rendered to SVG by Vega on Node (no browser,
 * no canvas) and to PNG by resvg.
 *
 * 1. `times-by-njobs`: the seed's 2×2 grid, time vs nJobs for the first four sizes.
 * 2. `times-by-size`: the seed's second plot, time vs size with one line per nJobs (legend "nJobs").
 * 3. `speedup`: time(nJobs = 1) / time(nJobs) per size, against the ideal line speedup = nJobs.
 */
import { Resvg } from '@resvg/resvg-js';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Cell, ExperimentResult } from './types.ts';

export interface Figure {
  /** File name without extension. */
  name: string;
  /** One line for the HTML page and alt texts. */
  title: string;
  spec: TopLevelSpec;
}

export interface RenderedFigure extends Figure {
  svg: string;
  png: Buffer;
  /** Size of the SVG in CSS pixels; the PNG is `PNG_SCALE` times larger. */
  width: number;
  height: number;
}

/** PNG pixels per SVG pixel: sharp on high-density screens and in READMEs. */
export const PNG_SCALE = 2;

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

/** Shared look: white background (PNG is not transparent), legible fonts, light grid. */
const CONFIG = {
  background: 'white',
  padding: 12,
  font: FONT,
  title: {
    fontSize: 15,
    fontWeight: 'bold',
    anchor: 'start',
    offset: 10,
    subtitleFontSize: 12,
    subtitleColor: '#555',
  },
  axis: { labelFontSize: 12, titleFontSize: 13, titlePadding: 8, gridColor: '#e6e6e6', domainColor: '#888' },
  // The same room for every y axis, so that the panels of the 2×2 grid line up whatever their labels.
  axisY: { minExtent: 44 },
  legend: { labelFontSize: 12, titleFontSize: 13, symbolSize: 120, symbolStrokeWidth: 3 },
  header: { labelFontSize: 13, labelFontWeight: 'bold', titleFontSize: 13 },
  line: { strokeWidth: 2.5 },
  point: { size: 60, filled: true },
  view: { stroke: '#ccc' },
} as const;

const SIZE_FORMAT = ',d';

function nJobsAxis(maxJobs: number) {
  return {
    title: 'nJobs (workers)',
    values: Array.from({ length: maxJobs }, (_, i) => i + 1),
    format: 'd',
    grid: true,
  };
}

function nJobsScale(maxJobs: number) {
  // Like the seed's xlim([.8, max_jobs + .2]): the first and last points do not sit on the frame.
  return { domain: [0.8, maxJobs + 0.2], nice: false, zero: false };
}

/**
 * Two short subtitle lines rather than one long one: without a canvas, Vega estimates text widths
 * generously (0.8 em a character), and a long line would widen the figure with empty space.
 */
function subtitle(result: ExperimentResult): string[] {
  const { params, machine } = result;
  const runs = `median of ${params.repeats} run${params.repeats === 1 ? '' : 's'}`;
  const memory = `${Math.round(machine.totalMemoryBytes / 2 ** 30)} GiB`;
  const cpus =
    machine.usableCpus === machine.logicalCpus
      ? `${machine.logicalCpus} CPUs`
      : `${machine.usableCpus} of ${machine.logicalCpus} CPUs usable`;
  return [
    `${params.tasksPerCell} convolutions per cell, ${params.backend} backend, ${runs}`,
    `${cpus}, ${memory}, ${machine.platform} ${machine.arch}, Node ${machine.node}`,
  ];
}

function rows(cells: Cell[]) {
  return cells.map((c) => ({ size: c.size, nJobs: c.nJobs, seconds: c.seconds }));
}

/** Time for one run of `tasksPerCell` tasks with nJobs = 1, per size; the speedup's reference. */
function speedupRows(cells: Cell[]) {
  const base = new Map<number, number>();
  for (const c of cells) if (c.nJobs === 1) base.set(c.size, c.seconds);
  return cells.flatMap((c) => {
    const reference = base.get(c.size);
    return reference === undefined || c.seconds <= 0
      ? []
      : [{ size: c.size, nJobs: c.nJobs, speedup: reference / c.seconds }];
  });
}

export function figures(result: ExperimentResult): Figure[] {
  const { params, cells } = result;
  const maxJobs = Math.max(...params.nJobsValues);
  const firstSizes = params.sizes.slice(0, 4);
  const sub = subtitle(result);

  const byNJobs: Figure = {
    name: 'times-by-njobs',
    title: `Time vs nJobs for the first ${firstSizes.length === 1 ? 'size' : `${firstSizes.length} sizes`}`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: CONFIG,
      title: { text: 'Time vs nJobs, one panel per convolution size', subtitle: sub },
      data: { values: rows(cells.filter((c) => firstSizes.includes(c.size))) },
      facet: {
        field: 'size',
        type: 'ordinal',
        sort: firstSizes,
        header: { title: null, labelExpr: "'Size = ' + format(datum.value, ',d')" },
      },
      columns: Math.min(2, firstSizes.length),
      resolve: { scale: { y: 'independent' } },
      spec: {
        width: 300,
        height: 190,
        layer: [
          { mark: { type: 'line', color: '#4c78a8', opacity: 0.5 } },
          { mark: { type: 'point', color: '#4c78a8' } },
        ],
        encoding: {
          x: { field: 'nJobs', type: 'quantitative', axis: nJobsAxis(maxJobs), scale: nJobsScale(maxJobs) },
          y: { field: 'seconds', type: 'quantitative', title: 'Time (s)', scale: { zero: true } },
          tooltip: [{ field: 'nJobs' }, { field: 'seconds', format: '.3f' }],
        },
      },
    },
  };

  const bySize: Figure = {
    name: 'times-by-size',
    title: 'Time vs convolution size, one line per nJobs',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: CONFIG,
      title: { text: 'Time vs convolution size, one line per nJobs', subtitle: sub },
      width: 620,
      height: 360,
      data: { values: rows(cells) },
      layer: [{ mark: 'line' }, { mark: 'point' }],
      encoding: {
        x: {
          field: 'size',
          type: 'quantitative',
          title: 'Convolution size (elements in each array)',
          axis: { format: SIZE_FORMAT, values: params.sizes, labelAngle: params.sizes.length > 6 ? -35 : 0 },
          scale: { zero: false, nice: false, padding: 16 },
        },
        y: { field: 'seconds', type: 'quantitative', title: 'Time (s)' },
        color: {
          field: 'nJobs',
          type: 'ordinal',
          title: 'nJobs',
          scale: { scheme: 'category10' },
          legend: { orient: 'top-left', fillColor: 'white', strokeColor: '#ccc', padding: 8, offset: 12 },
        },
      },
    },
  };

  const speedup = speedupRows(cells);
  const usable = result.machine.usableCpus;
  const ideal = params.nJobsValues.map((n) => ({ nJobs: n, speedup: n }));
  const speedupFigure: Figure = {
    name: 'speedup',
    title: 'Speedup vs nJobs against the ideal line',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: CONFIG,
      title: { text: 'Speedup over nJobs = 1, against the ideal (speedup = nJobs)', subtitle: sub },
      width: 620,
      height: 360,
      layer: [
        {
          data: { values: ideal },
          mark: { type: 'line', color: '#444', strokeWidth: 1.5 },
          encoding: {
            x: { field: 'nJobs', type: 'quantitative' },
            y: { field: 'speedup', type: 'quantitative' },
            // A constant dash encoding, only so that the ideal line gets its own legend entry.
            strokeDash: {
              datum: 'ideal (= nJobs)',
              type: 'nominal',
              scale: { range: [[6, 4]] },
              legend: {
                title: null,
                orient: 'right',
                symbolType: 'stroke',
                symbolStrokeColor: '#444',
                symbolSize: 300,
              },
            },
          },
        },
        ...(usable < maxJobs
          ? [
              {
                data: { values: [{ nJobs: usable }] },
                mark: { type: 'rule' as const, color: '#b22', strokeDash: [2, 3], strokeWidth: 1.5 },
                encoding: { x: { field: 'nJobs', type: 'quantitative' as const } },
              },
              {
                data: {
                  values: [{ nJobs: usable, label: `${usable} usable CPU${usable === 1 ? '' : 's'}` }],
                },
                mark: {
                  type: 'text' as const,
                  align: 'left' as const,
                  dx: 5,
                  y: 8,
                  fontSize: 12,
                  color: '#b22',
                },
                encoding: {
                  x: { field: 'nJobs', type: 'quantitative' as const },
                  text: { field: 'label', type: 'nominal' as const },
                },
              },
            ]
          : []),
        {
          data: { values: speedup },
          layer: [{ mark: 'line' }, { mark: 'point' }],
          encoding: {
            x: { field: 'nJobs', type: 'quantitative' },
            y: { field: 'speedup', type: 'quantitative' },
            color: {
              field: 'size',
              type: 'ordinal',
              title: 'Size',
              sort: params.sizes,
              scale: { scheme: 'category10' },
              legend: { format: SIZE_FORMAT, orient: 'right' },
            },
          },
        },
      ],
      encoding: {
        x: { axis: nJobsAxis(maxJobs), scale: nJobsScale(maxJobs) },
        y: { title: 'Speedup (× faster than nJobs = 1)', scale: { zero: true } },
      },
    },
  };

  return [byNJobs, bySize, speedupFigure];
}

/** Renders a Vega-Lite spec to an SVG string with Vega's headless SVG renderer. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders an SVG string to PNG at `scale` with resvg, using the system's fonts. */
export function svgToPng(svg: string, scale = PNG_SCALE): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

/** The width and height attributes of a root `<svg>` element, in pixels. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  const width = Number(/\swidth="([\d.]+)"/.exec(root)?.[1]);
  const height = Number(/\sheight="([\d.]+)"/.exec(root)?.[1]);
  if (!(width > 0 && height > 0)) throw new Error('the SVG has no width/height');
  return { width, height };
}

export async function renderFigures(result: ExperimentResult): Promise<RenderedFigure[]> {
  const out: RenderedFigure[] = [];
  for (const figure of figures(result)) {
    const svg = await renderSvg(figure.spec);
    out.push({ ...figure, svg, png: svgToPng(svg), ...svgSize(svg) });
  }
  return out;
}
