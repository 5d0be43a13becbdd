/**
 * One suite, run over every store as a table: the disk store (a temp folder) and the Redis store (its own
 * key prefix on the Redis at REDIS_URL; skipped without one, failing under JOBLIB_TS_REQUIRE_REDIS=1).
 * Hits, misses and why (`explain`, `verbose: 2`), damage, large values, eviction, single-flight between
 * two Memory objects, and `clear()` leaving nothing behind.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CacheStore, DiskStore, Memory, type MemoryOptions } from '../../src/memory/index.ts';
import { tempDir } from '../helpers.ts';
import { storeCases } from './store-cases.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Lets `process.emitWarning` (deferred to the next tick) reach its listeners. */
const tick = () => new Promise((r) => setImmediate(r));

function collectWarnings(): { list: string[]; stop(): void } {
  const list: string[] = [];
  const onWarning = (w: Error) => {
    if (w.name === 'CacheWarning') list.push(w.message);
  };
  process.on('warning', onWarning);
  return { list, stop: () => process.off('warning', onWarning) };
}

/** Counts runs. An instance: the code key counts its class, not its state (a plain object would count). */
class Counter {
  n = 0;
}

/** A function whose runs are counted by side effect, made by a factory so that `k` is a captured constant. */
function makeScaled(k: number, runs: Counter) {
  return function scaled(x: number, y = 0) {
    runs.n++;
    return { v: x * k + y, data: new Float64Array([x, k]) };
  };
}

for (const store of storeCases()) {
  describe(`${store.name} store`, { skip: await store.skip() }, () => {
    let made: { store: CacheStore; leftovers(): Promise<string[]>; cleanup(): Promise<void> }[] = [];
    const fresh = async () => {
      const s = await store.make();
      made.push(s);
      return s;
    };
    after(async () => {
      for (const s of made) await s.cleanup();
      made = [];
    });
    const memoryOn = (s: CacheStore, options: MemoryOptions = {}) =>
      s instanceof DiskStore ? new Memory(s.location, options) : new Memory({ ...options, store: s });

    it('computes once, serves hits, and a new Memory on the same store hits too', async () => {
      const s = await fresh();
      const runs = new Counter();
      const f = memoryOn(s.store).cache(makeScaled(2, runs));
      assert.deepStrictEqual(await f(3), { v: 6, data: new Float64Array([3, 2]) });
      assert.deepStrictEqual(await f(3), { v: 6, data: new Float64Array([3, 2]) });
      assert.equal(runs.n, 1);
      const again = memoryOn(s.store).cache(makeScaled(2, runs));
      assert.equal((await again(3)).v, 6);
      assert.equal(runs.n, 1);
      assert.equal(await again.checkCallInCache(3), true);
      assert.equal(await again.checkCallInCache(4), false);
      const shelved = await again.callAndShelve(5);
      assert.equal((await shelved.get()).v, 10);
    });

    it('explain says why: new arguments (and the nearest entry), hit, code changed, expired, rejected, damaged', async () => {
      const s = await fresh();
      const runs = new Counter();
      let accept = true;
      const options = { name: 'scaled', cacheValidationCallback: () => accept };
      const f = memoryOn(s.store).cache(makeScaled(2, runs), options);
      await f(1, 7);
      const fresh1 = await f.explain(1, 8);
      assert.equal(fresh1.reason, 'new-arguments');
      assert.deepStrictEqual(fresh1.nearest?.differs, ['y']);
      assert.match(
        fresh1.message,
        /never computed with these arguments; nearest entry: scaled\(x=1, y=7\), which differs in y/,
      );
      assert.equal((await f.explain(1, 7)).reason, 'hit');

      // Same name, same source, another captured constant: the code changed, and the constant is named.
      const g = memoryOn(s.store).cache(makeScaled(3, runs), options);
      const changed = await g.explain(1, 7);
      assert.equal(changed.reason, 'code-changed');
      assert.match(changed.message, /constant k .* changed/);

      accept = false;
      const rejected = await f.explain(1, 7);
      assert.equal(rejected.reason, 'rejected');
      accept = true;

      const expiring = memoryOn(s.store).cache(makeScaled(2, runs), { ...options, expiresAfterMs: 1 });
      await sleep(5);
      assert.equal((await expiring.explain(1, 7)).reason, 'expired');

      // A damaged entry: one byte flipped in the stored value.
      const hit = await f.explain(1, 7);
      const key = hit.entry.slice(s.store.description.length + 1);
      const bytes = Buffer.from((await s.store.read(key)) ?? []);
      bytes[bytes.length - 2] = (bytes[bytes.length - 2] ?? 0) ^ 0x5a;
      await s.store.write(key, [bytes]);
      const damaged = await f.explain(1, 7);
      assert.equal(damaged.reason, 'damaged');
      assert.match(damaged.message, /checksum/);

      // explain only looks: the damaged entry is still there, and a call recomputes it with a warning.
      const warnings = collectWarnings();
      try {
        const before = runs.n;
        assert.equal((await f(1, 7)).v, 9);
        assert.equal(runs.n, before + 1);
        await new Promise((r) => setImmediate(r));
        assert.equal(warnings.list.filter((w) => /unreadable/.test(w)).length, 1);
      } finally {
        warnings.stop();
      }
      assert.equal((await f.explain(1, 7)).reason, 'hit');
    });

    it('verbose >= 2 prints the reason of every miss', async () => {
      const s = await fresh();
      const lines: string[] = [];
      const runs = new Counter();
      const f = memoryOn(s.store, { verbose: 2, log: (l) => lines.push(l) }).cache(makeScaled(2, runs));
      await f(1);
      await f(2);
      await f(2);
      const misses = lines.filter((l) => l.includes('miss:'));
      assert.equal(misses.length, 2);
      assert.match(misses[0] ?? '', /scaled: miss: never computed with these arguments$/);
      assert.match(misses[1] ?? '', /nearest entry: scaled\(x=1\), which differs in x/);
    });

    it('stores large values whole', async () => {
      const s = await fresh();
      const big = memoryOn(s.store).cache(function big(n: number) {
        const a = new Float64Array(n);
        for (let i = 0; i < n; i++) a[i] = i * 0.5;
        return a;
      });
      const n = 3_000_000; // 24 MB: several chunks in Redis
      await big(n);
      const back = await memoryOn(s.store).cache(big.func)(n);
      assert.equal(back.length, n);
      assert.equal(back[n - 1], (n - 1) * 0.5);
      assert.equal(back[12345], 12345 * 0.5);
    });

    it('keeps under bytesLimit, least recently used first', async () => {
      const s = await fresh();
      const runs = new Counter();
      const memory = memoryOn(s.store);
      const f = memory.cache(function block(i: number) {
        runs.n++;
        return new Uint8Array(10_000).fill(i);
      });
      // A few ms apart: a store orders by last-use time, and entries written in the same millisecond tie.
      for (let i = 0; i < 6; i++) {
        await f(i);
        await sleep(5);
      }
      await f(0); // used again: now the most recent
      const res = await memory.reduceSize({ bytesLimit: 35_000 });
      assert.equal(res.removedItems, 3);
      assert.ok(res.remainingBytes <= 35_000);
      const kept = [];
      for (let i = 0; i < 6; i++) if (await f.checkCallInCache(i)) kept.push(i);
      assert.deepStrictEqual(kept, [0, 4, 5]);
    });

    it('two Memory objects on one store compute a new entry once (the store lock), and a failed owner hands over', async () => {
      const s = await fresh();
      let running = 0;
      let calls = 0;
      let fail = true;
      async function slowOnce(x: number) {
        calls++;
        running++;
        await sleep(100);
        running--;
        if (fail) {
          fail = false;
          throw new Error('first owner fails');
        }
        return x + 1;
      }
      const a = memoryOn(s.store).cache(slowOnce);
      const b = memoryOn(s.store).cache(slowOnce);
      const c = memoryOn(s.store).cache(slowOnce);
      const results = await Promise.allSettled([a(1), b(1), c(1)]);
      assert.equal(
        results.filter((r) => r.status === 'rejected').length,
        1,
        'the failing owner gets its error',
      );
      assert.deepStrictEqual(
        results
          .filter((r) => r.status === 'fulfilled')
          .map((r) => (r as PromiseFulfilledResult<number>).value),
        [2, 2],
      );
      assert.equal(calls, 2, 'one failed owner, one waiter that took over; never two at once');
      assert.equal(running, 0);
    });

    for (const lockWaitMs of [0, 20]) {
      it(`a waiter whose lockWaitMs (${lockWaitMs}) runs out computes the entry itself, with a warning`, async () => {
        const s = await fresh();
        let open!: () => void;
        const gate = new Promise<void>((resolve) => {
          open = resolve;
        });
        let ownerIn!: () => void;
        const ownerComputing = new Promise<void>((resolve) => {
          ownerIn = resolve;
        });
        let calls = 0;
        async function gated(x: number) {
          calls++;
          if (calls === 1) {
            ownerIn();
            await gate; // the owner holds the entry's lock until the test opens the gate
          }
          return x * 3;
        }
        const warnings = collectWarnings();
        try {
          const owner = memoryOn(s.store).cache(gated)(2);
          await ownerComputing;
          // The owner is still computing (the gate is shut): only a bounded wait lets this call finish.
          const waiter = memoryOn(s.store, { lockWaitMs }).cache(gated);
          assert.equal(await waiter(2), 6);
          assert.equal(calls, 2);
          await tick();
          assert.equal(warnings.list.filter((m) => /longer than lockWaitMs/.test(m)).length, 1);
          open();
          assert.equal(await owner, 6);
          assert.equal(await waiter(2), 6);
          assert.equal(calls, 2);
        } finally {
          open();
          warnings.stop();
        }
      });
    }

    it('clear() of a function removes its entries only; memory.clear() leaves nothing behind', async () => {
      const s = await fresh();
      const memory = memoryOn(s.store);
      const runs = new Counter();
      const f = memory.cache(makeScaled(2, runs));
      const g = memory.cache(function other(x: number) {
        return x;
      });
      await f(1);
      await g(1);
      await f.clear();
      assert.equal(await f.checkCallInCache(1), false);
      assert.equal(await g.checkCallInCache(1), true);
      assert.ok((await s.leftovers()).length > 0);
      await memory.clear();
      assert.deepStrictEqual(await s.leftovers(), []);
    });
  });
}

describe('the redis store', { skip: await storeCases()[1]?.skip() }, () => {
  it('gives every key of an entry the TTL, renewed by each hit', async () => {
    const { redisStore } = await import('../../src/backends/redis/index.ts');
    const { REDIS_URL, redis, uniquePrefix } = await import('../backends/redis/helpers.ts');
    const prefix = `${uniquePrefix()}:memory:`;
    const store = redisStore(REDIS_URL, { prefix, ttlMs: 600_000, chunkBytes: 64 * 1024 });
    try {
      const f = new Memory({ store }).cache(function sized(n: number) {
        return new Uint8Array(n).fill(1);
      });
      await f(200_000); // 4 chunks
      const keys = (await redis().keys(`${prefix}*`)).filter(
        (k) => k.includes(':c:') || k.includes(':e:sized/'),
      );
      const entryKeys = keys.filter((k) => k.endsWith('.jlts') || k.includes(':c:'));
      assert.ok(entryKeys.length >= 5, `an entry and its chunks: ${entryKeys.join(', ')}`);
      for (const k of entryKeys) {
        const ttl = await redis().pttl(k);
        assert.ok(ttl > 0 && ttl <= 600_000, `${k} has a TTL (${ttl})`);
      }
      const entry = entryKeys.find((k) => k.endsWith('.jlts')) ?? '';
      await redis().pexpire(entry, 1000);
      await f(200_000); // a hit renews it
      assert.ok((await redis().pttl(entry)) > 1000);
    } finally {
      await store.removeAll('');
      assert.deepStrictEqual(await redis().keys(`${prefix}*`), []);
      await store.close?.();
    }
  });
});

describe('the disk store', () => {
  it("keeps a lock fresh while its owner's event loop is busy with synchronous work", async () => {
    const dir = tempDir('joblib-ts-lockbeat-');
    const owner = new DiskStore(dir, 1500);
    const other = new DiskStore(dir, 1500);
    const lock = await owner.lock('f/v/a.jlts');
    assert.ok(lock);
    // Busy for well over the stale time: only the heartbeat thread can touch the lock meanwhile.
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      // synchronous work
    }
    assert.equal(await other.lock('f/v/a.jlts'), undefined, 'still held: not taken as stale');
    await lock.release();
    const next = await other.lock('f/v/a.jlts');
    assert.ok(next, 'free once released');
    await next.release();
  });

  it('names a lock folder it cannot write', async () => {
    const dir = tempDir('joblib-ts-lockdir-');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'blocked'), 'a file where the folder would be');
    const disk = new DiskStore(dir);
    await assert.rejects(disk.lock('blocked/v1/abc.jlts'), {
      name: 'MemoryError',
      message: new RegExp(`cannot make the lock file .* \\(in the folder ${join(dir, 'blocked', 'v1')}\\)`),
    });
    assert.deepStrictEqual(await readdir(dir), ['blocked']);
  });
});
