/**
 * The layout is the architecture: these rules keep it so. Imports are read by madge (static and
 * dynamic, type-only included), from the sources.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import madge from 'madge';
import { repoRoot } from './helpers.ts';

type Graph = Record<string, string[]>;

describe('architecture', () => {
  let graph: Graph = {};
  let circular: string[][] = [];

  before(async () => {
    const result = await madge(join(repoRoot, 'src'), { fileExtensions: ['ts'], includeNpm: true });
    graph = result.obj();
    circular = result.circular();
  });

  test('no import cycle', () => {
    assert.deepEqual(circular, []);
  });

  test('worker-side code (src/worker/) is imported only by worker-side code', () => {
    const offenders = Object.entries(graph).flatMap(([file, deps]) =>
      file.startsWith('worker/')
        ? []
        : deps.filter((d) => d.startsWith('worker/')).map((d) => `${file} → ${d}`),
    );
    assert.deepEqual(offenders, []);
  });

  test('worker-side code imports nothing of the caller side (backends/, dispatch/, cli/)', () => {
    const offenders = Object.entries(graph).flatMap(([file, deps]) =>
      file.startsWith('worker/')
        ? deps.filter((d) => /^(backends|dispatch|cli|progress)\//.test(d)).map((d) => `${file} → ${d}`)
        : [],
    );
    assert.deepEqual(offenders, []);
  });

  test('the dispatcher does not reach into progress reporting (reporters read its counters)', () => {
    const offenders = Object.entries(graph).flatMap(([file, deps]) =>
      file.startsWith('dispatch/')
        ? deps.filter((d) => d.startsWith('progress/')).map((d) => `${file} → ${d}`)
        : [],
    );
    assert.deepEqual(offenders, []);
  });

  test('only the command line imports the command line', () => {
    const offenders = Object.entries(graph).flatMap(([file, deps]) =>
      file.startsWith('cli/') ? [] : deps.filter((d) => d.startsWith('cli/')).map((d) => `${file} → ${d}`),
    );
    assert.deepEqual(offenders, []);
  });

  test("the extras' packages are imported only by the modules of their extra, which the core loads lazily", () => {
    const extras: Record<string, RegExp> = {
      '^backends/redis/': /node_modules\/(bullmq|ioredis|msgpackr)\//,
      '^cli/experiment/charts\\.ts$': /node_modules\/(vega|vega-lite|@resvg\/resvg-js)\//,
    };
    const offenders = Object.entries(graph).flatMap(([file, deps]) =>
      deps
        .filter((dep) =>
          Object.entries(extras).some(([home, pkg]) => pkg.test(dep) && !new RegExp(home).test(file)),
        )
        .map((dep) => `${file} → ${dep}`),
    );
    assert.deepEqual(offenders, []);
    // And the core's own entry reaches them only through the registry's lazy entry and the CLI's
    // dynamic imports: index.ts does not pull them in statically (checked by the packed-tarball test,
    // which runs the core with none of them installed).
  });
});
