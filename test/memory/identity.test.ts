import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { functionIdentity, parseParams } from '../../src/memory/index.ts';

describe('parseParams', () => {
  const cases: [string, (string | null)[], boolean][] = [
    ['function f(a, b) { return a + b; }', ['a', 'b'], false],
    ['function (a, b = 2, ...rest) {}', ['a', 'b', 'rest'], true],
    ['async function* gen(x, { y, z } = {}, [w]) {}', ['x', null, null], false],
    ['(a, b) => a', ['a', 'b'], false],
    ['async (a, /* note, with comma */ b = f(1, 2)) => a', ['a', 'b'], false],
    ['x => x * 2', ['x'], false],
    ['async x => x', ['x'], false],
    ['method(a, b = ")", c) { return a; }', ['a', 'b', 'c'], false],
    ['() => 1', [], false],
    ['function f(a, b = (x) => { return x, 1; }, c) {}', ['a', 'b', 'c'], false],
    ['function f(\n  a, // first\n  b,\n) {}', ['a', 'b'], false],
  ];
  for (const [src, names, rest] of cases) {
    it(`reads ${JSON.stringify(src)}`, () => {
      assert.deepStrictEqual(parseParams(src), { names, rest });
    });
  }
  it('gives up on native functions and classes', () => {
    assert.equal(parseParams(Math.max.toString()), undefined);
    assert.equal(parseParams('class A { constructor(x) {} }'), undefined);
  });
  it('reads real functions', () => {
    function real(alpha: number, beta = 2, ...more: number[]) {
      return alpha + beta + more.length;
    }
    assert.deepStrictEqual(parseParams(real.toString()), { names: ['alpha', 'beta', 'more'], rest: true });
  });
});

describe('functionIdentity', () => {
  it('names the function, hashes its source, honours name and version', () => {
    function alpha(x: number) {
      return x + 1;
    }
    function alphaEdited(x: number) {
      return x + 2;
    }
    const id = functionIdentity(alpha);
    assert.equal(id.id, 'alpha');
    assert.equal(id.dirName, 'alpha');
    assert.match(id.codeVersion, /^[0-9a-f]{16}$/);
    assert.equal(functionIdentity(alpha).codeVersion, id.codeVersion);
    assert.notEqual(functionIdentity(alphaEdited).codeVersion, id.codeVersion);
    const named = functionIdentity(alpha, { name: 'features/v2: build' });
    assert.equal(named.id, 'features/v2: build');
    assert.match(named.dirName, /^features_v2__build-[0-9a-f]{8}$/);
    assert.equal(functionIdentity(alpha, { version: '3' }).codeVersion, 'v-3');
    assert.equal(functionIdentity(alphaEdited, { version: '3' }).codeVersion, 'v-3');
    assert.equal(functionIdentity(() => 1).named, false);
  });
});
