/**
 * The scan that reads a function's names for its cache key without parsing (src/memory/source-scan.ts)
 * must never miss a name the parse finds (a missed helper would leave a stale cache), must say `declared`
 * for every extra name it keeps, and must give up where code and text cannot be told apart.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'acorn';
import { analyzeSource } from '../../src/capture/free-variables.ts';
import { scanSource } from '../../src/memory/source-scan.ts';

const scan = (source: string) => {
  const facts = scanSource(source);
  assert.ok(facts, `scanned: ${source}`);
  return facts;
};

/** What a key would follow: the scan's names that the parse also calls free (the rest must be declared). */
function agreesWithParse(source: string): void {
  const exact = analyzeSource(source);
  const scanned = scanSource(source);
  if (exact === undefined || scanned === undefined) return;
  const free = new Set(scanned.free);
  for (const name of exact.free) assert.ok(free.has(name), `${name} missed in: ${source.slice(0, 200)}`);
  for (const [name, props] of Object.entries(scanned.members)) {
    if (!exact.free.includes(name)) continue;
    const exactProps = exact.members[name];
    assert.ok(exactProps, `${name} is used whole, not only as ${name}.x, in: ${source.slice(0, 200)}`);
    for (const p of exactProps)
      assert.ok(props.includes(p), `${name}.${p} missed in: ${source.slice(0, 200)}`);
  }
}

describe('source scan: the names a key follows, without a parse', () => {
  it('finds uses and skips strings, comments, templates, regular expressions, properties and keys', () => {
    const facts = scan(
      `function f(x) {
        // helperA in a comment
        const s = 'helperB' + "helperC" + \`text \${helperD(x)} more \${ \`\${helperE}\` }\`;
        const re = /helperF[/]'"/g.test(s) ? x / helperG / 2 : 0;
        const o = { helperH: 1, [helperI]: 2, helperJ, ...helperK };
        return o.helperL + lib.scale + lib.offset + re + other?.deep + (cond ? .5 : helperM);
      }`,
    );
    for (const name of ['helperD', 'helperE', 'helperG', 'helperI', 'helperJ', 'helperK', 'lib', 'helperM'])
      assert.ok(facts.free.includes(name), name);
    for (const name of ['helperA', 'helperB', 'helperC', 'helperF', 'helperH', 'helperL', 'scale', 'deep'])
      assert.ok(!facts.free.includes(name), name);
    assert.deepEqual(facts.members, { lib: ['scale', 'offset'], other: ['deep'] });
    assert.ok(facts.free.includes('cond'));
  });

  it('lists what it cannot tell from a use as declared: parameters, locals, patterns, methods, fields', () => {
    const facts = scan(
      `class K extends Base {
        count = 0;
        method(a, { b, c: [d] }) { const e = 1, g = 2; let [h] = a; for (const i of b) {} try {} catch (j) {}
          return (k) => l => a + e + g + h + d + k + l + j; }
      }`,
    );
    for (const name of ['K', 'count', 'method', 'a', 'b', 'd', 'e', 'g', 'h', 'i', 'j', 'k', 'l'])
      assert.ok(facts.declared.includes(name), name);
    assert.ok(facts.free.includes('Base'));
    assert.ok(!facts.declared.includes('Base'));
  });

  it('keeps a use and a member read of one name apart: a whole use wins', () => {
    assert.deepEqual(scan('function f() { return m.a + m.b; }').members, { m: ['a', 'b'] });
    assert.deepEqual(scan('function f() { return m.a + m["b"]; }').members, {});
    assert.deepEqual(scan('function f() { return m.a + g(m); }').members, {});
    assert.deepEqual(scan('function f() { return m?.a + m.#p; }').members, {});
  });

  it('case labels are uses, statement labels are not', () => {
    const facts = scan('function f(x) { outer: for (;;) { switch (x) { case a, b: break outer; } } }');
    assert.ok(facts.free.includes('a') && facts.free.includes('b'));
    assert.ok(!facts.free.includes('outer'));
  });

  it('gives up where a slash could divide or start a regular expression, and on escapes in names', () => {
    assert.equal(scanSource('function f() { if (x) {} /a/.test(y) }'), undefined);
    assert.equal(scanSource('function f() { return a++ / 2; }'), undefined);
    assert.equal(scanSource('function f() { return \\u0061; }'), undefined);
    assert.equal(scanSource('function f() { return café; }'), undefined);
    assert.equal(scanSource('function f() { return "unterminated; }'), undefined);
    // Told apart: after `)` of a condition a regex, after a call's `)` a division.
    assert.ok(scan('function f() { if (x) /a/.test(y); return g(x) / h; }').free.includes('h'));
  });

  it('never misses a name the parse finds, over every function of real packages', () => {
    const require = createRequire(import.meta.url);
    const acornFile = require.resolve('acorn');
    const bullmqClasses = join(dirname(require.resolve('bullmq')), '..', 'esm', 'classes');
    const files = [
      acornFile,
      ...readdirSync(bullmqClasses)
        .filter((f) => f.endsWith('.js'))
        .map((f) => join(bullmqClasses, f)),
    ];
    let checked = 0;
    let scanned = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const program = parse(text, { ecmaVersion: 'latest', sourceType: 'module' });
      const visit = (node: unknown): void => {
        if (node === null || typeof node !== 'object') return;
        if (Array.isArray(node)) {
          for (const child of node) visit(child);
          return;
        }
        const n = node as { type?: unknown; start: number; end: number };
        if (typeof n.type !== 'string') return;
        if (
          /^(FunctionDeclaration|FunctionExpression|ArrowFunctionExpression|ClassDeclaration)$/.test(n.type)
        ) {
          const source = text.slice(n.start, n.end);
          agreesWithParse(source);
          checked++;
          if (scanSource(source) !== undefined) scanned++;
        }
        for (const [key, child] of Object.entries(n)) if (key !== 'type') visit(child);
      };
      visit(program);
    }
    assert.ok(checked > 1000, `${checked} functions checked`);
    assert.ok(scanned / checked > 0.99, `${scanned} of ${checked} scanned without giving up`);
  });
});
