import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { JoblibError } from '../../src/errors.ts';
import { type EntryMetadata, expiresAfter, Memory, MemoryError } from '../../src/memory/index.ts';
import { load } from '../../src/persist.ts';

let root: string;
let dir: string;
let counter: string;
let n = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'joblib-ts-memory-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
beforeEach(() => {
  n++;
  dir = join(root, `cache-${n}`);
  counter = join(root, `counter-${n}.txt`);
});

/** How many times the real function ran, read from the file it appends to. */
function runs(): number {
  return existsSync(counter) ? readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0;
}

function square(x: number, label = '') {
  appendFileSync(counter, `square ${x} ${label}\n`);
  return { value: x * x, at: new Float64Array([x, x]) };
}

function collectWarnings(): { list: { code: string | undefined; message: string }[]; stop(): void } {
  const list: { code: string | undefined; message: string }[] = [];
  const onWarning = (w: Error & { code?: string }) => {
    if (w.name === 'CacheWarning') list.push({ code: w.code, message: w.message });
  };
  process.on('warning', onWarning);
  return { list, stop: () => process.off('warning', onWarning) };
}

const tick = () => new Promise((r) => setImmediate(r));

async function entryFiles(location: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.jlts')) out.push(p);
    }
  };
  await walk(location);
  return out.sort();
}

describe('Memory', () => {
  it('computes once, then serves hits; counts seen through the counter file', async () => {
    const memory = new Memory(dir);
    const cached = memory.cache(square);
    assert.deepStrictEqual(await cached(3), { value: 9, at: new Float64Array([3, 3]) });
    assert.equal(runs(), 1);
    assert.deepStrictEqual(await cached(3), { value: 9, at: new Float64Array([3, 3]) });
    assert.deepStrictEqual(await cached(4), { value: 16, at: new Float64Array([4, 4]) });
    assert.equal(runs(), 2);
    // A fresh Memory and wrapper on the same folder (as in another run of the program) hits too.
    const again = new Memory(dir).cache(square);
    await again(3);
    await again(4);
    assert.equal(runs(), 2);
    assert.equal((await entryFiles(dir)).length, 2);
    assert.equal(readFileSync(join(dir, '.gitignore'), 'utf8').trim().split('\n').at(-1), '*');
  });

  it('treats equal arguments written differently as the same call', async () => {
    let calls = 0;
    const memory = new Memory(dir);
    const f = memory.cache(function total(o: { a: number; b: number }, m: Map<string, number>) {
      calls++;
      return o.a + o.b + [...m.values()].reduce((s, v) => s + v, 0);
    });
    assert.equal(
      await f(
        { a: 1, b: 2 },
        new Map([
          ['x', 1],
          ['y', 2],
        ]),
      ),
      6,
    );
    assert.equal(
      await f(
        { b: 2, a: 1 },
        new Map([
          ['y', 2],
          ['x', 1],
        ]),
      ),
      6,
    );
    assert.equal(calls, 1);
  });

  it('keeps rich values: typed arrays, Map, Set, Date, BigInt, nested objects', async () => {
    const memory = new Memory(dir);
    const make = memory.cache(function make(seed: bigint) {
      return {
        seed,
        when: new Date(0),
        tags: new Set(['a']),
        table: new Map([[1, { deep: [new Int16Array([1, -1])] }]]),
      };
    });
    const first = await make(7n);
    const hit = await make(7n);
    assert.deepStrictEqual(hit, first);
    assert.ok(hit.table.get(1)?.deep[0] instanceof Int16Array);
  });

  it('ignores parameters by name or position', async () => {
    const memory = new Memory(dir);
    const byName = memory.cache(square, { ignore: ['label'] });
    await byName(5, 'first');
    await byName(5, 'second');
    assert.equal(runs(), 1);
    const byPos = memory.cache(square, { ignore: [1], name: 'square-by-position' });
    await byPos(5, 'a');
    await byPos(5, 'b');
    assert.equal(runs(), 2);
    const notIgnored = memory.cache(square, { name: 'square-all' });
    await notIgnored(5, 'a');
    await notIgnored(5, 'b');
    assert.equal(runs(), 4);
    // f(x) and f(x, undefined) are the same call for a declared parameter.
    await notIgnored(6);
    await notIgnored(6, undefined);
    assert.equal(runs(), 5);
  });

  it('rejects unknown ignore names, naming the parameters it found', () => {
    const memory = new Memory(dir);
    assert.throws(
      () => memory.cache(square, { ignore: ['lable'] }),
      (err: unknown) =>
        err instanceof MemoryError &&
        err.code === 'ERR_MEMORY_OPTION' &&
        /options\.ignore names 'lable'/.test(err.message) &&
        /parameters found: x, label/.test(err.message),
    );
    assert.throws(() => memory.cache(square, { ignore: 'label' as never }), { code: 'ERR_MEMORY_OPTION' });
    assert.throws(() => memory.cache(square, { ignore: [-1] }), { code: 'ERR_MEMORY_OPTION' });
  });

  it('expires entries after expiresAfterMs', async () => {
    const memory = new Memory(dir);
    const fresh = memory.cache(square, { expiresAfterMs: 60_000 });
    await fresh(2);
    await fresh(2);
    assert.equal(runs(), 1);
    const expired = memory.cache(square, { expiresAfterMs: 0 });
    await expired(2);
    assert.equal(runs(), 2, 'an entry older than 0 ms is recomputed');
    const viaHelper = memory.cache(square, { cacheValidationCallback: expiresAfter({ hours: 1 }) });
    await viaHelper(2);
    assert.equal(runs(), 2);
  });

  it('asks cacheValidationCallback with the metadata, and recomputes on false', async () => {
    const memory = new Memory(dir);
    const seen: EntryMetadata[] = [];
    let accept = true;
    const f = memory.cache(square, {
      cacheValidationCallback: (meta) => {
        seen.push(meta);
        return accept;
      },
    });
    const computingFrom = Date.now();
    await f(8, 'x');
    const computedBy = Date.now();
    await f(8, 'x');
    assert.equal(runs(), 1);
    assert.equal(seen.length, 1);
    const meta = seen[0];
    assert.ok(meta);
    assert.equal(meta.function, 'square');
    assert.deepStrictEqual(meta.input, { x: '8', label: '"x"' });
    assert.ok(meta.durationMs >= 0);
    assert.ok(
      meta.time >= computingFrom && meta.time <= computedBy,
      'stored when the first call computed it',
    );
    accept = false;
    await f(8, 'x');
    assert.equal(runs(), 2);
  });

  it('callAndShelve returns a reference that loads later; checkCallInCache reads no value', async () => {
    const memory = new Memory(dir);
    const f = memory.cache(square);
    assert.equal(await f.checkCallInCache(9), false);
    const ref = await f.callAndShelve(9);
    assert.equal(runs(), 1);
    assert.ok(ref.path?.endsWith('.jlts'));
    assert.equal(ref.metadata?.input.x, '9');
    assert.equal(await f.checkCallInCache(9), true);
    assert.deepStrictEqual(await ref.get(), { value: 81, at: new Float64Array([9, 9]) });
    const again = await f.callAndShelve(9);
    assert.equal(runs(), 1);
    assert.equal(again.path, ref.path);
    await ref.clear();
    assert.equal(await f.checkCallInCache(9), false);
    await assert.rejects(ref.get(), { name: 'MemoryError', code: 'ERR_MEMORY_MISSING' });
  });

  it('call() recomputes and overwrites; clear() empties a function or the whole cache', async () => {
    const memory = new Memory(dir);
    const f = memory.cache(square);
    const g = memory.cache(function cube(x: number) {
      return x ** 3;
    });
    await f(1);
    const forced = await f.call(1);
    assert.equal(runs(), 2);
    assert.equal(forced.value.value, 1);
    assert.equal(forced.metadata?.function, 'square');
    await g(2);
    await f.clear();
    assert.equal(await f.checkCallInCache(1), false);
    assert.equal(await g.checkCallInCache(2), true);
    await f(1);
    assert.equal(runs(), 3);
    await memory.clear();
    assert.equal(await g.checkCallInCache(2), false);
    assert.deepStrictEqual(await readdir(dir), ['.gitignore']);
    await f(1);
    assert.equal(runs(), 4, 'works again after clear()');
  });

  it('reduceSize removes least recently used entries first', async () => {
    const memory = new Memory(dir);
    const f = memory.cache(square);
    for (const x of [1, 2, 3, 4]) await f(x);
    const files = await entryFiles(dir);
    // Make access order explicit and well separated: 1 oldest ... 4 newest, then use 1 again.
    const base = Date.now() / 1000 - 100;
    const byArg = new Map<number, string>();
    for (const file of files) {
      const { meta } = await import('../../src/persist.ts').then((p) => p.readContainerMeta(file));
      byArg.set(Number((meta as EntryMetadata).input.x), file);
    }
    for (const [x, file] of byArg) await utimes(file, base + x, base);
    await f(1); // a hit: marks entry 1 as just used
    assert.equal(runs(), 4);
    const size = (await stat(files[0] ?? '')).size;
    const res = await memory.reduceSize({ itemsLimit: 2 });
    assert.equal(res.removedItems, 2);
    assert.equal(res.remainingItems, 2);
    // Checked through the files, not by reading entries (a read may itself count as an access).
    const present = () => [1, 2, 3, 4].filter((x) => existsSync(byArg.get(x) ?? ''));
    assert.deepStrictEqual(present(), [1, 4], 'least recently used (2, 3) go first; the hit entry 1 stays');
    const bySize = await memory.reduceSize({ bytesLimit: size + 1 });
    assert.equal(bySize.remainingItems, 1);
    assert.deepStrictEqual(present(), [1]);
    const byAge = await memory.reduceSize({ ageLimitMs: 10 * 60_000 });
    assert.equal(byAge.removedItems, 0);
    const file1 = byArg.get(1) ?? '';
    await utimes(file1, base, base);
    const old = await memory.reduceSize({ ageLimitMs: 60_000 });
    assert.equal(old.removedItems, 1);
    assert.equal(old.remainingItems, 0);
    await assert.rejects(memory.reduceSize({ ageLimitMs: -1 }), {
      code: 'ERR_MEMORY_OPTION',
      message: /ageLimitMs: expected a non-negative number/,
    });
    await assert.rejects(memory.reduceSize({ bytesLimit: '10 parsecs' }), { message: /like '500M'/ });
  });

  it('applies bytesLimit automatically after writes', async () => {
    const memory = new Memory(dir, { bytesLimit: '3K' });
    const big = memory.cache(function blob(i: number) {
      return new Uint8Array(1500).fill(i);
    });
    for (let i = 0; i < 6; i++) await big(i);
    const files = await entryFiles(dir);
    let total = 0;
    for (const f of files) total += (await stat(f)).size;
    assert.ok(total <= 3 * 1024, `cache holds ${total} bytes`);
    assert.ok(files.length >= 1);
    assert.equal(await big.checkCallInCache(5), true, 'the newest entry is kept');
  });

  it('recomputes a truncated or damaged entry with a warning, never returning wrong data', async () => {
    const memory = new Memory(dir);
    const f = memory.cache(square);
    await f(7);
    const [file] = await entryFiles(dir);
    assert.ok(file);
    const warnings = collectWarnings();
    try {
      const { size } = await stat(file);
      await truncate(file, size - 5);
      assert.deepStrictEqual(await f(7), { value: 49, at: new Float64Array([7, 7]) });
      assert.equal(runs(), 2);
      // A bit flip in the stored value: caught by the checksum.
      const buf = await readFile(file);
      buf[buf.length - 3] = (buf[buf.length - 3] ?? 0) ^ 0x55;
      await writeFile(file, buf);
      assert.deepStrictEqual(await f(7), { value: 49, at: new Float64Array([7, 7]) });
      assert.equal(runs(), 3);
      await writeFile(file, 'garbage');
      assert.equal((await f(7)).value, 49);
      assert.equal(runs(), 4);
      await f(7);
      assert.equal(runs(), 4, 'the rewritten entry is good');
      await tick();
      const corrupt = warnings.list.filter((w) => w.code === 'JOBLIB_TS_CORRUPT_ENTRY');
      assert.equal(corrupt.length, 3);
      assert.match(
        corrupt[0]?.message ?? '',
        /square: cached result .* is unreadable .*truncated.*recomputing/,
      );
    } finally {
      warnings.stop();
    }
  });

  it('location null turns caching off: calls go through', async () => {
    const memory = new Memory(null);
    const f = memory.cache(square);
    await f(1);
    await f(1);
    assert.equal(runs(), 2);
    assert.equal(await f.checkCallInCache(1), false);
    const ref = await f.callAndShelve(2);
    assert.equal(ref.path, undefined);
    assert.equal((await ref.get()).value, 4);
    assert.deepStrictEqual(await memory.reduceSize({ itemsLimit: 0 }), {
      removedItems: 0,
      removedBytes: 0,
      remainingItems: 0,
      remainingBytes: 0,
    });
  });

  it('prints joblib-shaped lines when verbose', async () => {
    const lines: string[] = [];
    const memory = new Memory(dir, { verbose: 1, log: (l) => lines.push(l) });
    const f = memory.cache(square);
    await f(3, 'v');
    assert.equal(lines[0], '_'.repeat(80));
    assert.equal(lines[1], '[Memory] Calling square...');
    assert.equal(lines[2], 'square(3, "v")');
    assert.match(lines[3] ?? '', /^_+square - \d+\.\ds, \d+\.\dmin$/);
    assert.equal(lines[3]?.length, 80);
    await f(3, 'v');
    assert.equal(lines.length, 4, 'hits are silent at verbose 1');
    const loud = memory.cache(square, { verbose: 5 });
    await loud(3, 'v');
    assert.match(lines[4] ?? '', /^\[Memory\] \d+\.\ds, \d+\.\dmin: Loading square from .*\.jlts$/);
  });

  it('fails loudly when a result cannot be stored, or warns with onStoreError: warn', async () => {
    const memory = new Memory(dir);
    const bad = memory.cache(function makeFn(x: number) {
      return { x, f: () => x };
    });
    await assert.rejects(bad(1), (err: unknown) => {
      assert.ok(err instanceof MemoryError);
      assert.equal(err.code, 'ERR_MEMORY_STORE');
      assert.match(err.message, /makeFn: the result could not be cached/);
      assert.match(err.message, /onStoreError: 'warn'/);
      return true;
    });
    const warnings = collectWarnings();
    try {
      const lenient = memory.cache(
        function makeFn2(x: number) {
          return { x, f: () => x };
        },
        { onStoreError: 'warn' },
      );
      assert.equal((await lenient(2)).x, 2);
      await tick();
      assert.equal(warnings.list.filter((w) => w.code === 'JOBLIB_TS_STORE_FAILED').length, 1);
    } finally {
      warnings.stop();
    }
  });

  it('refuses unhashable arguments unless ignored or keyed', async () => {
    const memory = new Memory(dir);
    const apply = memory.cache(function apply(x: number, fn: (v: number) => number) {
      return fn(x);
    });
    await assert.rejects(
      apply(2, (v) => v + 1),
      {
        code: 'ERR_MEMORY_ARGS',
        message: /apply: the arguments cannot be used as a cache key: a function .* at \$\[1\]\[1\]/,
      },
    );
    const ignored = memory.cache(
      function apply2(x: number, fn: (v: number) => number) {
        return fn(x);
      },
      { ignore: ['fn'] },
    );
    assert.equal(await ignored(2, (v) => v + 1), 3);
    assert.equal(await ignored(2, (v) => v + 100), 3, 'ignored argument: cached value');
    const keyed = memory.cache(
      function apply3(x: number, fn: (v: number) => number) {
        return fn(x);
      },
      { key: (x) => x },
    );
    assert.equal(await keyed(2, (v) => v * 10), 20);
    assert.equal(await keyed(2, (v) => v * 20), 20);
  });

  it('shares one computation between concurrent equal calls in a process', async () => {
    const memory = new Memory(dir);
    const slow = memory.cache(async function slowSquare(x: number) {
      appendFileSync(counter, `${x}\n`);
      await new Promise((r) => setTimeout(r, 30));
      return x * x;
    });
    const results = await Promise.all([slow(5), slow(5), slow(5), slow(6)]);
    assert.deepStrictEqual(results, [25, 25, 25, 36]);
    assert.equal(runs(), 2);
  });

  it('keeps entries of a named function apart, and honours an explicit version', async () => {
    const memory = new Memory(dir);
    const a = memory.cache(square, { name: 'featurize@v2' });
    await a(1);
    assert.ok(existsSync(join(dir, 'featurize@v2')));
    const v1 = memory.cache(square, { name: 'versioned', version: '1' });
    await v1(1);
    await memory.cache(square, { name: 'versioned', version: '1' })(1);
    assert.equal(runs(), 2);
    const warnings = collectWarnings();
    try {
      await memory.cache(square, { name: 'versioned', version: '2' })(1);
      assert.equal(runs(), 3);
      await tick();
      assert.equal(warnings.list.filter((w) => w.code === 'JOBLIB_TS_CODE_CHANGED').length, 1);
    } finally {
      warnings.stop();
    }
  });

  it('throws MemoryError as a JoblibError, keeping its name, code, message and cause', async () => {
    assert.throws(
      () => new Memory(dir, { bytesLimit: 'lots' }),
      (err: unknown) => {
        assert.ok(err instanceof JoblibError, 'a MemoryError is a JoblibError');
        assert.ok(err instanceof MemoryError);
        assert.equal(err.name, 'MemoryError');
        assert.equal(err.code, 'ERR_MEMORY_OPTION');
        assert.match(
          String(err),
          /^MemoryError: new Memory\(location, options\): options\.bytesLimit: expected/,
        );
        return true;
      },
    );
    const keyed = new Memory(dir).cache(function keyedByFunction(f: () => number) {
      return f();
    });
    await assert.rejects(
      keyed(() => 1),
      (err: unknown) => {
        assert.ok(err instanceof JoblibError);
        assert.ok(err instanceof MemoryError);
        assert.equal(err.code, 'ERR_MEMORY_ARGS');
        // The HashError that caused it is a JoblibError too.
        assert.ok(err.cause instanceof JoblibError);
        assert.equal((err.cause as Error).name, 'HashError');
        return true;
      },
    );
  });

  it('validates constructor arguments with messages naming them', () => {
    assert.throws(() => new Memory(42 as never), {
      name: 'MemoryError',
      code: 'ERR_MEMORY_OPTION',
      message: /new Memory\(location\): location must be a directory path/,
    });
    assert.throws(() => new Memory(dir, { bytesLimit: -5 }), { message: /options\.bytesLimit: expected/ });
    assert.throws(() => new Memory(dir, { compress: 'lz4' as never }), {
      code: 'ERR_MEMORY_OPTION',
      message: /options\.compress/,
    });
    for (const bad of [-1, Number.NaN, '5s']) {
      assert.throws(() => new Memory(dir, { lockWaitMs: bad as never }), {
        name: 'MemoryError',
        code: 'ERR_MEMORY_OPTION',
        message:
          /new Memory\(location, options\): options\.lockWaitMs: expected a non-negative number of milliseconds/,
      });
    }
    assert.equal(new Memory(dir).lockWaitMs, Number.POSITIVE_INFINITY);
    assert.equal(new Memory(dir, { lockWaitMs: 0 }).lockWaitMs, 0);
    assert.throws(() => new Memory(dir, { lock_wait_ms: 5 } as never), {
      code: 'ERR_MEMORY_OPTION',
      message: /did you mean lockWaitMs\?/,
    });
    assert.throws(() => new Memory(dir).cache('f' as never), {
      message: /fn must be a function; got string/,
    });
    assert.throws(() => new Memory(dir).cache(square, { expiresAfterMs: -1 }), {
      message: /options\.expiresAfterMs: expected a non-negative number/,
    });
  });

  it('stores compressed entries when asked', async () => {
    const memory = new Memory(dir, { compress: ['gzip', 6] });
    const zeros = memory.cache(function zeros(k: number) {
      return new Float64Array(k);
    });
    await zeros(50_000);
    const [file] = await entryFiles(dir);
    assert.ok(file);
    assert.ok((await stat(file)).size < 50_000);
    assert.deepStrictEqual(await zeros(50_000), new Float64Array(50_000));
    const raw = await readFile(file);
    assert.equal(raw[10], 1, 'gzip method byte');
    // Entries are ordinary dump containers.
    assert.deepStrictEqual(await load(file), new Float64Array(50_000));
  });
});
