import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { JoblibError } from '../src/errors.ts';
import { HashError, hash } from '../src/hash.ts';

/** Rebuilds a plain value with every object's keys inserted in reverse order (same content). */
function reorder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reorder);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).reverse()) out[k] = reorder((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

const jsonish = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.double(),
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.bigInt(),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string(), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('hash', () => {
  it('gives equal hashes for equal values (structuredClone copies)', () => {
    fc.assert(
      fc.property(jsonish, (v) => {
        assert.equal(hash(v), hash(structuredClone(v)));
      }),
      { numRuns: 300 },
    );
  });

  it('ignores object key order, at every depth', () => {
    fc.assert(
      fc.property(jsonish, (v) => {
        assert.equal(hash(v), hash(reorder(v)));
      }),
      { numRuns: 300 },
    );
    assert.equal(hash({ a: 1, b: 2 }), hash({ b: 2, a: 1 }));
    assert.equal(
      hash({ x: { a: [1, { c: 3, d: 4 }], b: 2 } }),
      hash({ x: { b: 2, a: [1, { d: 4, c: 3 }] } }),
    );
  });

  it('gives equal hashes only to deep-strict-equal values', () => {
    fc.assert(
      fc.property(jsonish, jsonish, (a, b) => {
        // structuredClone maps null-prototype objects to plain ones: hash() treats them alike on purpose.
        const same = isDeepStrictEqual(structuredClone(a), structuredClone(b));
        assert.equal(hash(a) === hash(b), same);
      }),
      { numRuns: 500 },
    );
  });

  it('is deterministic across processes (known value computed in a child process)', () => {
    const value = {
      a: [1, 2.5, 'x', null, true],
      m: new Map([['k', 1n]]),
      s: new Set([3, 1]),
      f: new Float64Array([1, 2]),
    };
    const src = `
      import { hash } from ${JSON.stringify(new URL('../src/hash.ts', import.meta.url).href)};
      const value = { f: new Float64Array([1, 2]), s: new Set([1, 3]), m: new Map([['k', 1n]]), a: [1, 2.5, 'x', null, true] };
      process.stdout.write(hash(value));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], {
      encoding: 'utf8',
    });
    assert.equal(out, hash(value));
    assert.match(out, /^[0-9a-f]{32}$/);
  });

  it('hashes Map and Set by content, not insertion order', () => {
    assert.equal(
      hash(
        new Map<unknown, unknown>([
          ['a', 1],
          [2, 'b'],
        ]),
      ),
      hash(
        new Map<unknown, unknown>([
          [2, 'b'],
          ['a', 1],
        ]),
      ),
    );
    assert.equal(hash(new Set([1, 2, 3])), hash(new Set([3, 2, 1])));
    assert.notEqual(hash(new Set([1, 2])), hash(new Set([1, 2, 3])));
    assert.notEqual(hash(new Map([['a', 1]])), hash(new Map([['a', 2]])));
    assert.notEqual(hash(new Map([['a', 1]])), hash({ a: 1 }));
    assert.notEqual(hash(new Set([1])), hash([1]));
  });

  it('hashes typed arrays by element type and bytes', () => {
    const bytes = new Uint8Array([0, 0, 128, 63, 0, 0, 0, 64]);
    const f32 = new Float32Array(bytes.buffer.slice(0));
    const i32 = new Int32Array(bytes.buffer.slice(0));
    assert.notEqual(hash(f32), hash(i32));
    assert.notEqual(hash(new Uint8Array(bytes)), hash(Buffer.from(bytes)));
    assert.equal(hash(new Float32Array([1, 2])), hash(f32));
    // Views hash their own window, not the whole buffer.
    const big = new Float64Array([9, 1, 2, 9]);
    assert.equal(hash(big.subarray(1, 3)), hash(new Float64Array([1, 2])));
    // Large arrays (hashed in place) still depend on every byte.
    const large = new Float64Array(100_000).fill(1);
    const h1 = hash(large);
    large[99_999] = 2;
    assert.notEqual(hash(large), h1);
    assert.equal(hash(large), hash(large.slice()));
  });

  it('handles -0, NaN, undefined and holes on purpose', () => {
    assert.notEqual(hash(-0), hash(0), '-0 and 0 differ (1/x tells them apart)');
    assert.equal(hash(Number.NaN), hash(0 / 0), 'every NaN is the same');
    assert.equal(hash(Number.NaN), hash(new Float64Array([Number.NaN])[0]));
    assert.notEqual(hash({ a: undefined }), hash({}), 'an undefined property is not a missing one');
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    assert.notEqual(hash([, 1]), hash([undefined, 1]), 'an array hole is not undefined');
    assert.notEqual(hash(undefined), hash(null));
    assert.notEqual(hash(1), hash(1n));
    assert.notEqual(hash(1), hash('1'));
    assert.notEqual(hash(['ab', 'c']), hash(['a', 'bc']));
    assert.equal(hash(new Date(5)), hash(new Date(5)));
    assert.notEqual(hash(new Date(5)), hash(5));
    assert.notEqual(hash(/a/g), hash(/a/i));
  });

  it('includes class names of instances', () => {
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    assert.notEqual(hash(new Point(1, 2)), hash({ x: 1, y: 2 }));
    assert.equal(hash(new Point(1, 2)), hash(new Point(1, 2)));
    assert.equal(hash(Object.assign(Object.create(null), { x: 1 })), hash({ x: 1 }));
  });

  it('refuses cycles with a clear error naming where', () => {
    const a: { self?: unknown; list: unknown[] } = { list: [] };
    a.list.push(a);
    assert.throws(
      () => hash(a),
      (err: unknown) =>
        err instanceof HashError &&
        err.code === 'ERR_HASH_CYCLE' &&
        err.path === '$.list[0]' &&
        /cycle/.test(err.message),
    );
    const m = new Map<string, unknown>();
    m.set('me', m);
    assert.throws(() => hash(m), { name: 'HashError', code: 'ERR_HASH_CYCLE' });
    // Shared (non-cyclic) references are fine.
    const shared = { v: 1 };
    assert.equal(hash([shared, shared]), hash([{ v: 1 }, { v: 1 }]));
  });

  it('throws HashError as a JoblibError, keeping its name, code, path and message', () => {
    const a: unknown[] = [];
    a.push(a);
    assert.throws(
      () => hash(a),
      (err: unknown) => {
        assert.ok(err instanceof JoblibError, 'a HashError is a JoblibError');
        assert.ok(err instanceof HashError);
        assert.equal(err.name, 'HashError');
        assert.equal(err.code, 'ERR_HASH_CYCLE');
        assert.equal(err.path, '$[0]');
        assert.match(String(err), /^HashError: .*cycle/);
        return true;
      },
    );
  });

  it('refuses functions, unique symbols and weak collections', () => {
    assert.throws(() => hash({ f: () => 1 }), { code: 'ERR_HASH_UNSUPPORTED', path: '$.f' });
    assert.throws(() => hash(Symbol('x')), { code: 'ERR_HASH_UNSUPPORTED' });
    assert.throws(() => hash(new WeakMap()), { code: 'ERR_HASH_UNSUPPORTED' });
    assert.equal(hash(Symbol.for('x')), hash(Symbol.for('x')));
  });

  it('supports other algorithms and rejects unknown ones', () => {
    assert.match(hash({ a: 1 }, { algorithm: 'sha256' }), /^[0-9a-f]{64}$/);
    assert.match(hash({ a: 1 }, { algorithm: 'md5' }), /^[0-9a-f]{32}$/);
    assert.match(hash({ a: 1 }, { algorithm: 'xxh3-128' }), /^[0-9a-f]{32}$/);
    assert.equal(hash({ a: 1, b: 2 }, { algorithm: 'sha1' }), hash({ b: 2, a: 1 }, { algorithm: 'sha1' }));
    const large = new Float64Array(10_000).fill(3);
    assert.equal(
      hash({ large }, { algorithm: 'sha1' }),
      hash({ large: large.slice() }, { algorithm: 'sha1' }),
    );
    assert.notEqual(hash('x', { algorithm: 'sha1' }), hash('x'));
    assert.throws(() => hash(1, { algorithm: 'crc32' as never }), {
      name: 'HashError',
      code: 'ERR_HASH_OPTION',
      message: /options\.algorithm must be one of/,
    });
  });

  it('hashes long strings by content', () => {
    const s = 'é'.repeat(10_000);
    assert.equal(hash(s), hash(`${'é'.repeat(5_000)}${'é'.repeat(5_000)}`));
    assert.notEqual(hash(s), hash(`${s}x`));
  });
});
