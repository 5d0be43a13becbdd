/**
 * How a worker reaches a function that is not a top-level export of its own: a member of a package's
 * default export (`import _ from 'lodash'; delayed(_.sum)`), of a default-exported object or namespace,
 * a static method; Node's built-ins without a warning; and the fix printed when nothing works.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { delayed, Parallel } from '../src/index.ts';
import { sourceHash } from '../src/locate/source-hash.ts';
import memberTasks, { Geometry, MathTools, Stats } from './fixtures/member-tasks.ts';
import { repoRoot, runTsx, tempDir } from './helpers.ts';

interface LodashLike {
  sum(values: number[]): number;
  mean(values: number[]): number;
  adder(n: number): (x: number) => number;
}

/**
 * A project with a lodash-shaped package in node_modules: a CommonJS UMD file whose export is a
 * function carrying the API as properties, defined inside a factory (as lodash's runInContext), so
 * that no module exports `sum` by name.
 */
async function importLodashLike(): Promise<LodashLike> {
  const root = tempDir('joblib-ts-lodash-');
  const pkg = join(root, 'node_modules', 'lodash-like');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'lodash-like', main: 'lodash.js' }));
  writeFileSync(
    join(pkg, 'lodash.js'),
    `;(function () {
  function runInContext() {
    function lodash(value) { return value; }
    function sum(array) { var total = 0; for (var i = 0; i < array.length; i++) total += array[i]; return total; }
    function mean(array) { return sum(array) / array.length; }
    function adder(n) { return function add(x) { return x + n; }; }
    lodash.sum = sum;
    lodash.mean = mean;
    lodash.adder = adder;
    return lodash;
  }
  var _ = runInContext();
  if (typeof module == 'object' && module.exports) { (module.exports = _)._ = _; } else { this._ = _; }
}.call(this));
`,
  );
  writeFileSync(join(root, 'use.mjs'), "import _ from 'lodash-like';\nexport default _;\n");
  return ((await import(pathToFileURL(join(root, 'use.mjs')).href)) as { default: LodashLike }).default;
}

for (const backend of ['threads', 'processes'] as const) {
  describe(`members of exports on ${backend}`, () => {
    const parallel = new Parallel({ nJobs: 2, backend });
    after(() => parallel.close());

    test("a package's default-exported function's members: delayed(_.sum)", async () => {
      const _ = await importLodashLike();
      assert.deepEqual(await parallel.run([delayed(_.sum)([1, 2, 3]), delayed(_.mean)([2, 4])]), [6, 3]);
    });

    test('members of a default-exported object, a TypeScript namespace, static methods, nested objects', async () => {
      const results = await parallel.run([
        delayed(memberTasks.total)([1, 2, 3]),
        delayed(memberTasks.shapes.area)(2, 5),
        delayed(Stats.product)([2, 3, 4]),
        delayed(MathTools.twice)(21),
        delayed(Geometry.Circle.circumference)(1),
      ]);
      assert.deepEqual(results, [6, 10, 24, 42, 2 * Math.PI]);
    });

    test('a closure a package made (not exported anywhere) travels by value and runs', async () => {
      const _ = await importLodashLike();
      assert.deepEqual(await parallel.run([delayed(_.adder(2))(1), delayed(_.adder(5))(1)]), [3, 6]);
    });
  });
}

describe('built-in functions', () => {
  test('node: functions run on threads and processes without printing any warning', async () => {
    const run = await runTsx(join(repoRoot, 'test/fixtures/programs/builtin-tasks.ts'), {
      timeoutMs: 60_000,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '', 'locating a built-in printed to stderr');
    const { results, crc32 } = JSON.parse(run.stdout) as {
      results: Record<string, unknown[]>;
      crc32: boolean;
    };
    for (const backend of ['threads', 'processes']) {
      const [base, formatted, crc] = results[backend] ?? [];
      assert.equal(base, 'b.txt');
      assert.equal(formatted, '1+2');
      if (crc32) assert.equal(crc, 891568578);
    }
  });
});

/** A function made from source text, as tsx would emit it (not run: only its text is looked at). */
const compile = (source: string): unknown => new Function(`return ${source}`)();

test("a function's source fingerprint is the same whether tsx wrapped its dynamic import once or twice", () => {
  // What tsx emits for `await import('node:fs')`: in a worker that registered tsx itself, seen twice.
  const step = '.then(s=>{const e="default";return s[e]&&typeof s[e]=="object"&&"__esModule"in s[e]?s[e]:s})';
  const make = (steps: number) =>
    compile(
      `(async function read(file){const{readFileSync}=await import("node:fs")${step.repeat(steps)};return readFileSync(file)})`,
    ) as (file: string) => Promise<unknown>;
  assert.equal(sourceHash(make(2)), sourceHash(make(1)));
  assert.equal(sourceHash(make(0)), sourceHash(make(1)));
  const other = compile('(async function read(file){return file})') as (file: string) => Promise<unknown>;
  assert.notEqual(sourceHash(other), sourceHash(make(1)), 'a different body still differs');
});
