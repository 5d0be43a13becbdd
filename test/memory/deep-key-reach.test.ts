/**
 * What a deep code key reaches, read in this process: the shortcuts that make keying fast (a token scan
 * instead of a parse, the parse only where a declared name matters, the facts an earlier process stored)
 * must give the parts a parse gives: a name that only appears in a string, a comment, a property or a
 * shadowing parameter is not a part; one used is.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { AnyFunction } from '../../src/delayed.ts';
import {
  deepCode,
  exactParseCount,
  parsedSourceCount,
  type StoredFacts,
} from '../../src/memory/deep-code.ts';
import { tempDir } from '../helpers.ts';

const names = (fn: AnyFunction) =>
  Object.values(deepCode(fn).parts)
    .map((p) => `${p.kind}:${p.name}`)
    .sort();

describe('deep code keys: what is reached', () => {
  it('follows uses only: strings, comments, properties and shadowing names are not parts', async () => {
    const dir = tempDir('joblib-ts-deep-reach-');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      join(dir, 'other.ts'),
      `export function imported(x: number): number {
  return x + LIMIT;
}
const LIMIT = 3;
export function notImported(): number {
  return 0;
}
`,
    );
    writeFileSync(
      join(dir, 'main.ts'),
      `import { imported } from './other.ts';
import * as other from './other.ts';

const FACTOR = 2;
const UNUSED = 5;

export function leaf(x: number): number {
  return x * x;
}

export function unrelated(): number {
  return 1;
}

export function inString(): string {
  return 'unrelated() // UNUSED';
}

export function shadows(unrelated: number): number {
  // a comment naming UNUSED
  const o = { unrelated: 1, UNUSED: 2 };
  return o.unrelated + unrelated;
}

export function recursive(n: number): number {
  return n <= 0 ? 0 : recursive(n - 1) + leaf(n);
}

export function root(x: number): number {
  return leaf(x) * FACTOR + inString().length + shadows(x) + recursive(2) + imported(x) + other.imported(1);
}
`,
    );
    const main = (await import(pathToFileURL(join(dir, 'main.ts')).href)) as Record<string, AnyFunction>;
    assert.deepEqual(names(main.root as AnyFunction), [
      'constant:FACTOR',
      'constant:LIMIT',
      'function:imported',
      'function:inString',
      'function:leaf',
      'function:recursive',
      'function:root',
      'function:shadows',
    ]);
    // Keyed once per process: the same object again.
    assert.equal(deepCode(main.root as AnyFunction), deepCode(main.root as AnyFunction));
    // A function reached before as a helper is keyed alone the same way.
    assert.deepEqual(names(main.shadows as AnyFunction), ['function:shadows']);
  });

  it('a name both declared and used that the key would follow goes to the exact parse', async () => {
    // Plain JavaScript keeps a parameter that shadows a module function (tsx's TypeScript output renames
    // it): the scan cannot tell the parameter from the function, the parse can.
    const dir = tempDir('joblib-ts-deep-shadow-');
    writeFileSync(
      join(dir, 'main.mjs'),
      `export function helper() {
  return 1;
}
export function shadows(helper) {
  return helper + 1;
}
export function uses(x) {
  const local = x + 1;
  return helper() + local;
}
`,
    );
    const main = (await import(pathToFileURL(join(dir, 'main.mjs')).href)) as Record<string, AnyFunction>;
    const before = exactParseCount();
    assert.deepEqual(names(main.shadows as AnyFunction), ['function:shadows']);
    assert.equal(exactParseCount(), before + 1, 'the shadowing function was parsed');
    // A local that shadows nothing the key follows needs no parse.
    assert.deepEqual(names(main.uses as AnyFunction), ['function:helper', 'function:uses']);
    assert.equal(exactParseCount(), before + 1, 'nothing else parsed');
  });

  it('facts stored by an earlier keying spare the parse; damaged ones are parsed again', async () => {
    const dir = tempDir('joblib-ts-deep-facts-');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const source = `const K = 3;
export function outer(x: number): number {
  return inner(x) * K;
}
export function inner(x: number): number {
  return x > 0 ? outer(x - 1) : 0;
}
`;
    const load = async (name: string) => {
      writeFileSync(join(dir, name), source);
      return (await import(pathToFileURL(join(dir, name)).href)) as Record<string, AnyFunction>;
    };
    // Three copies of one module: the same sources, so the same hashes, each keyed once per process.
    const [a, b, c] = [await load('a.ts'), await load('b.ts'), await load('c.ts')];
    const first = deepCode(a.outer as AnyFunction);
    assert.equal(Object.keys(first.facts.bySource).length, 2);
    const expected = names(a.outer as AnyFunction);
    assert.deepEqual(expected, ['constant:K', 'function:inner', 'function:outer']);

    const before = parsedSourceCount();
    const again = deepCode(b.outer as AnyFunction, JSON.parse(JSON.stringify(first.facts)) as StoredFacts);
    assert.equal(parsedSourceCount(), before, 'nothing parsed');
    // Other files (other ids), same code: the same hashes.
    const hashes = (code: { parts: Readonly<Record<string, { hash: string }>> }) =>
      Object.values(code.parts)
        .map((p) => p.hash)
        .sort();
    assert.deepEqual(hashes(again), hashes(first));
    assert.deepEqual(names(b.outer as AnyFunction), expected);

    const damaged: StoredFacts = {
      format: first.facts.format,
      bySource: Object.fromEntries(Object.keys(first.facts.bySource).map((h) => [h, { free: 'inner' }])),
    } as unknown as StoredFacts;
    const parsedAgain = deepCode(c.outer as AnyFunction, damaged);
    assert.equal(parsedSourceCount(), before + 2, 'both parsed again');
    assert.deepEqual(hashes(parsedAgain), hashes(first));
    assert.deepEqual(names(c.outer as AnyFunction), expected);
  });
});
