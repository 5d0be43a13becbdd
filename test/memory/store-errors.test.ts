/**
 * Bad stores refused clearly: an unreachable Redis is named by its URL without the password, wrong
 * options name the option, and `new Memory` refuses a store that is not one. No Redis needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redisStore } from '../../src/backends/redis/index.ts';
import { Memory } from '../../src/memory/index.ts';

export function twice(x: number): number {
  return x * 2;
}

describe('store errors', () => {
  it('an unreachable Redis names its URL, never its password', async () => {
    const store = redisStore('redis://reader:s3cret-pw@127.0.0.1:1/0', { connectTimeoutMs: 3000 });
    assert.equal(store.description, 'redis://reader:***@127.0.0.1:1/0 (prefix joblib-ts:memory:)');
    const cached = new Memory({ store }).cache(twice);
    await assert.rejects(cached(1), (err: Error & { code?: string }) => {
      assert.equal(err.name, 'MemoryError');
      assert.equal(err.code, 'ERR_MEMORY_STORE');
      assert.match(err.message, /Cannot reach Redis at redis:\/\/reader:\*\*\*@127\.0\.0\.1:1\/0/);
      assert.doesNotMatch(err.message, /s3cret/);
      assert.doesNotMatch(String(err.stack), /s3cret/);
      return true;
    });
    // With onStoreError: 'warn', the call runs uncached.
    const lenient = new Memory({ store }).cache(twice, { onStoreError: 'warn' });
    const warned: string[] = [];
    const onWarning = (w: Error) => warned.push(w.message);
    process.on('warning', onWarning);
    try {
      assert.equal(await lenient(4), 8);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('refuses bad options, naming them', () => {
    assert.throws(
      () => redisStore('redis://127.0.0.1:6379', { chunkBytes: 0 }),
      /options\.chunkBytes must be a positive integer; got 0/,
    );
    assert.throws(
      () => redisStore('redis://127.0.0.1:6379', { ttlMs: -5 }),
      /options\.ttlMs must be a positive integer/,
    );
    assert.throws(
      () => redisStore('redis://127.0.0.1:6379', { prefix: '' }),
      /options\.prefix must be a non-empty string/,
    );
    assert.throws(() => new Memory({ store: {} as never }), {
      name: 'MemoryError',
      message: /options\.store must be a CacheStore \(description, read, write, remove, list, removeAll\)/,
    });
    const store = redisStore('redis://127.0.0.1:6379');
    assert.throws(
      () => new Memory('/tmp/somewhere', { store }),
      /give a location or options\.store, not both/,
    );
    assert.throws(() => new Memory({ verbose: 1 } as never), /options\.store is missing/);
    assert.throws(() => new Memory(null).cache(twice, { deepKey: 'yes' as never }), {
      name: 'MemoryError',
      message: /cache\(twice, options\): options\.deepKey must be true or false; got "yes"/,
    });
  });
});
