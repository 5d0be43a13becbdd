import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { serialize } from 'node:v8';
import { JoblibError } from '../src/errors.ts';
import { type Compress, dump, load, PersistError, zstdAvailable } from '../src/persist.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'joblib-ts-persist-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sample() {
  const nested = { deep: { list: [1, 'two', null, undefined, true] } };
  return {
    f64: Float64Array.from({ length: 1000 }, (_, i) => i / 7),
    i32: new Int32Array([1, -2, 3]),
    u8: new Uint8Array([0, 255]),
    big: new BigInt64Array([1n, -(2n ** 60n)]),
    odd: new Uint8Array([1, 2, 3]),
    sub: new Float32Array([1, 2, 3, 4]).subarray(1, 3),
    dv: new DataView(new Uint8Array([9, 8, 7]).buffer),
    buf: Buffer.from('héllo'),
    map: new Map<unknown, unknown>([
      ['a', 1],
      [2, new Set(['x', 'y'])],
    ]),
    set: new Set([1, 2, 3]),
    date: new Date('2026-11-25T12:00:00Z'),
    bigint: 12345678901234567890123n,
    regexp: /ab+c/gi,
    nested,
    again: nested,
    text: 'héllo'.repeat(100),
    negZero: -0,
    nan: Number.NaN,
  };
}

const METHODS: { compress: Compress; method: string }[] = [
  { compress: false, method: 'none' },
  { compress: true, method: 'gzip' },
  { compress: 6, method: 'gzip' },
  { compress: 'deflate', method: 'deflate' },
  { compress: ['gzip', 1], method: 'gzip' },
  { compress: ['deflate', 9], method: 'deflate' },
  { compress: ['brotli', 5], method: 'brotli' },
  { compress: 'brotli', method: 'brotli' },
];

describe('dump / load', () => {
  for (const { compress, method } of METHODS) {
    it(`round-trips with compress=${JSON.stringify(compress)}`, async () => {
      const path = join(dir, `rt-${method}-${String(compress)}.jlts`);
      const value = sample();
      const res = await dump(value, path, { compress });
      assert.equal(res.method, method);
      assert.equal(res.bytes, (await stat(path)).size);
      const back = await load<ReturnType<typeof sample>>(path);
      assert.deepStrictEqual(back, value);
      assert.ok(back.again === back.nested, 'shared references survive');
      assert.ok(back.f64 instanceof Float64Array);
      assert.ok(Buffer.isBuffer(back.buf));
      assert.equal(back.dv.getUint8(2), 7);
      assert.deepStrictEqual([...back.sub], [2, 3]);
      assert.ok(Object.is(back.negZero, -0));
    });
  }

  it('round-trips zstd where Node has it, and says which Node is needed where not', async () => {
    const path = join(dir, 'zstd.jlts');
    if (zstdAvailable()) {
      await dump(sample(), path, { compress: ['zstd', 3] });
      assert.deepStrictEqual(await load(path), sample());
    } else {
      await assert.rejects(dump(sample(), path, { compress: 'zstd' }), (err: unknown) => {
        assert.ok(err instanceof PersistError);
        assert.equal(err.code, 'ERR_DUMP_UNSUPPORTED_METHOD');
        assert.match(err.message, /Node 22\.15\+/);
        assert.ok(err.message.includes(process.version));
        return true;
      });
      // A zstd file written elsewhere: a clear error on load as well. Forge one from a gzip container.
      await dump({ a: 1 }, path, { compress: 'gzip', checksum: false });
      const buf = await readFile(path);
      buf[10] = 4; // method byte -> zstd
      // fix the header checksum so the only problem is the method
      const { checksum64 } = await import('../src/hash.ts');
      const meta = buf.subarray(64, 64 + buf.readUInt32LE(32));
      buf.writeBigUInt64LE(checksum64(Buffer.concat([buf.subarray(0, 48), meta])), 48);
      await writeFile(path, buf);
      await assert.rejects(load(path), { code: 'ERR_DUMP_UNSUPPORTED_METHOD', message: /zstd/ });
    }
  });

  it('compresses repetitive data', async () => {
    const value = new Float64Array(100_000);
    const plain = await dump(value, join(dir, 'zeros.jlts'));
    const packed = await dump(value, join(dir, 'zeros.gz.jlts'), { compress: 3 });
    assert.ok(packed.bytes < plain.bytes / 50);
  });

  it('accepts file: URLs and creates missing folders, writing atomically', async () => {
    const url = pathToFileURL(join(dir, 'sub', 'dir', 'x.jlts'));
    await dump([1, 2, 3], url);
    assert.deepStrictEqual(await load(url), [1, 2, 3]);
    await dump([4], url);
    assert.deepStrictEqual(await load(url), [4]);
    const left = await readdir(join(dir, 'sub', 'dir'));
    assert.deepStrictEqual(left, ['x.jlts'], 'no temp files left behind');
  });

  it('reports truncated files clearly', async () => {
    const path = join(dir, 'trunc.jlts');
    await dump(new Float64Array(1000), path);
    const { size } = await stat(path);
    await truncate(path, size - 100);
    await assert.rejects(load(path), (err: unknown) => {
      assert.ok(err instanceof PersistError);
      assert.equal(err.code, 'ERR_DUMP_TRUNCATED');
      assert.equal(err.path, path);
      assert.match(err.message, /truncated/);
      return true;
    });
    await truncate(path, 20);
    await assert.rejects(load(path), { code: 'ERR_DUMP_TRUNCATED' });
  });

  it('reports foreign files, naming what they look like', async () => {
    const cases: [string, Uint8Array | string, RegExp][] = [
      ['empty', '', /empty file/],
      ['json', '{"a": 1}', /JSON/],
      ['pickle', new Uint8Array([0x80, 0x04, 0x95, 0, 0, 0]), /pickle/],
      ['v8', serialize({ a: 1 }), /v8\.serialize/],
      ['gzip', new Uint8Array([0x1f, 0x8b, 8, 0]), /gzip/],
      ['text', 'hello world, this is not a dump', /not a joblib-ts dump/],
    ];
    for (const [name, content, why] of cases) {
      const path = join(dir, `foreign-${name}`);
      await writeFile(path, content);
      await assert.rejects(load(path), (err: unknown) => {
        assert.ok(err instanceof PersistError, name);
        assert.equal(err.code, 'ERR_DUMP_FOREIGN', name);
        assert.match(err.message, why, name);
        return true;
      });
    }
  });

  it('detects damaged payloads with the checksum, and damaged headers', async () => {
    const path = join(dir, 'flip.jlts');
    await dump(new Float64Array(1000).fill(1), path);
    const buf = await readFile(path);
    const flipped = Buffer.from(buf);
    flipped[flipped.length - 10] = (flipped[flipped.length - 10] ?? 0) ^ 0xff;
    await writeFile(path, flipped);
    await assert.rejects(load(path), { code: 'ERR_DUMP_CORRUPT', message: /checksum/ });
    const badHeader = Buffer.from(buf);
    badHeader[11] = 99; // level byte: covered by the header checksum
    await writeFile(path, badHeader);
    await assert.rejects(load(path), { code: 'ERR_DUMP_CORRUPT', message: /header checksum/ });
    // A genuine newer file (its header checksum matches) versus a damaged version field.
    const { checksum64 } = await import('../src/hash.ts');
    const newer = Buffer.from(buf);
    newer.writeUInt16LE(2, 8);
    newer.writeBigUInt64LE(checksum64(newer.subarray(0, 48)), 48);
    await writeFile(path, newer);
    await assert.rejects(load(path), { code: 'ERR_DUMP_VERSION', message: /newer joblib-ts/ });
    newer.writeBigUInt64LE(0n, 48);
    await writeFile(path, newer);
    await assert.rejects(load(path), { code: 'ERR_DUMP_VERSION', message: /or its header is corrupt/ });
    await writeFile(path, Buffer.concat([buf, Buffer.from('extra')]));
    await assert.rejects(load(path), { code: 'ERR_DUMP_CORRUPT' });
  });

  it('a damaged header byte says corrupt, never truncated: the header checksum is checked before its lengths', async () => {
    const path = join(dir, 'header-flip.jlts');
    await dump({ a: new Float64Array(1000).fill(2) }, path);
    const buf = await readFile(path);
    // The case of the issue: offset 20 is inside the stored payload length.
    const at20 = Buffer.from(buf);
    at20[20] = (at20[20] ?? 0) ^ 0x01;
    await writeFile(path, at20);
    await assert.rejects(load(path), (err: unknown) => {
      assert.ok(err instanceof PersistError);
      assert.equal(err.code, 'ERR_DUMP_CORRUPT');
      assert.match(err.message, /is corrupt: its header checksum does not match/);
      assert.doesNotMatch(err.message, /truncated|announces/);
      return true;
    });
    // Every byte after the magic: a flip is reported as damage, never as a cut file.
    const { readContainerMeta } = await import('../src/persist.ts');
    for (let offset = 8; offset < 64; offset++) {
      const flipped = Buffer.from(buf);
      flipped[offset] = (flipped[offset] ?? 0) ^ 0x10;
      await writeFile(path, flipped);
      for (const read of [() => load(path), () => readContainerMeta(path)]) {
        await assert.rejects(read(), (err: unknown) => {
          assert.ok(err instanceof PersistError, `offset ${offset}`);
          if (offset >= 32 && offset < 36) {
            // The metadata length itself: past the end of the file, nothing can be checked.
            assert.match(err.message, /truncated or its header is corrupt|corrupt/, `offset ${offset}`);
          } else {
            assert.match(err.code, /ERR_DUMP_CORRUPT|ERR_DUMP_VERSION/, `offset ${offset}: ${err.message}`);
            assert.match(err.message, /corrupt/, `offset ${offset}`);
          }
          return true;
        });
      }
    }
  });

  it('a foreign file is named once, not "not a joblib-ts dump file (not a joblib-ts dump file)"', async () => {
    const path = join(dir, 'plain.txt');
    await writeFile(path, 'hello world, this is not a dump');
    await assert.rejects(load(path), (err: unknown) => {
      assert.ok(err instanceof PersistError);
      assert.equal(err.message, `load: ${path} is not a joblib-ts dump file`);
      return true;
    });
    await writeFile(path, '{"a": 1}');
    await assert.rejects(load(path), {
      message: /is not a joblib-ts dump file \(it looks like JSON text\)$/,
    });
  });

  it('loads data only: class instances come back as plain objects, no code runs', async () => {
    let ran = 0;
    class Model {
      weights = [1, 2];
      get touched() {
        ran++;
        return ran;
      }
    }
    const path = join(dir, 'model.jlts');
    await dump(new Model(), path);
    const back = await load<Record<string, unknown>>(path);
    assert.deepStrictEqual(back, { weights: [1, 2] });
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.equal(ran, 0);
  });

  it('rejects with PersistError as a JoblibError, keeping its name, code, path and message', async () => {
    const path = join(dir, 'not-a-container.jlts');
    await writeFile(path, 'plain text, not a joblib-ts file');
    await assert.rejects(load(path), (err: unknown) => {
      assert.ok(err instanceof JoblibError, 'a PersistError is a JoblibError');
      assert.ok(err instanceof PersistError);
      assert.equal(err.name, 'PersistError');
      assert.equal(err.code, 'ERR_DUMP_FOREIGN');
      assert.equal(err.path, path);
      assert.match(String(err), /^PersistError: load: .* is not a joblib-ts dump file/);
      return true;
    });
  });

  it('rejects unstorable values and bad options with errors naming the argument', async () => {
    await assert.rejects(dump({ f: () => 1 }, join(dir, 'fn.jlts')), {
      name: 'PersistError',
      code: 'ERR_DUMP_SERIALIZE',
      message: /cannot be stored/,
    });
    await assert.rejects(dump(1, join(dir, 'x'), { compress: 'lzma' as never }), {
      code: 'ERR_DUMP_OPTION',
      message: /options\.compress: expected false, true, a level 0-9/,
    });
    await assert.rejects(dump(1, join(dir, 'x'), { compress: ['gzip', 12] }), {
      code: 'ERR_DUMP_OPTION',
      message: /gzip level must be an integer from 0 to 9; got 12/,
    });
    await assert.rejects(dump(1, join(dir, 'x'), { compress: ['brotli', 12] }), { message: /0 to 11/ });
    await assert.rejects(dump(1, '' as string), { code: 'ERR_DUMP_OPTION', message: /dump: path must be/ });
    await assert.rejects(load(42 as never), { code: 'ERR_DUMP_OPTION', message: /load: path must be/ });
    await assert.rejects(load(join(dir, 'missing')), { code: 'ENOENT' });
  });
});
