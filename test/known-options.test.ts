import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  delayed,
  dump,
  InvalidArgumentError,
  Memory,
  MemoryError,
  Parallel,
  PersistError,
  parallelConfig,
} from '../src/index.ts';
import { editDistance, nearestName } from '../src/known-options.ts';
import { square } from './fixtures/tasks.ts';
import { tempDir } from './helpers.ts';

/** Checks `error` is `Class`, names the unknown option, and suggests `suggestion` when given. */
function refused(Class: new (...args: never[]) => Error, option: string, suggestion?: string) {
  return (error: unknown) => {
    assert.ok(error instanceof Class, `expected ${Class.name}, got ${String(error)}`);
    assert.match(error.message, new RegExp(`unknown option "${option}"`));
    if (suggestion) assert.match(error.message, new RegExp(`did you mean ${suggestion}\\b`));
    return true;
  };
}

describe('unknown options are refused, with the nearest known name', () => {
  test('editDistance and nearestName', () => {
    assert.equal(editDistance('backed', 'backend'), 1);
    assert.equal(editDistance('verbsoe', 'verbose'), 1);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(nearestName('n_jobs', ['nJobs', 'backend']), 'nJobs');
    assert.equal(nearestName('zzzzzzzz', ['nJobs', 'backend']), undefined);
  });

  test('new Parallel: joblib names map to ours, typos to the nearest name; nothing runs', () => {
    const cases: [string, string][] = [
      ['n_jobs', 'nJobs'],
      ['backed', 'backend'],
      ['batch_size', 'batchSize'],
      ['pre_dispatch', 'preDispatch'],
      ['max_nbytes', 'maxNbytes'],
      ['return_as', 'returnAs'],
      ['timeout', 'timeoutMs'],
      ['verbos', 'verbose'],
      ['njobs', 'nJobs'],
    ];
    for (const [given, ours] of cases) {
      assert.throws(() => new Parallel({ [given]: 2 } as never), refused(InvalidArgumentError, given, ours));
    }
    // The whole case of the issue: nothing silently runs sequentially.
    assert.throws(
      () => new Parallel({ n_jobs: 4, backed: 'processes', batch_size: 2 } as never),
      /unknown option "n_jobs"; did you mean nJobs\?/,
    );
    assert.throws(() => new Parallel({ mmap_mode: 'r' } as never), /mmap_mode has no equivalent/);
    assert.throws(
      () => new Parallel({ qqqqqqqqq: 1 } as never),
      /unknown option "qqqqqqqqq"\. Known options: /,
    );
  });

  test('run(): an option of Parallel given to one run says where it goes', async () => {
    const parallel = new Parallel();
    await assert.rejects(
      parallel.run([delayed(square)(2)], { n_jobs: 2 } as never),
      refused(InvalidArgumentError, 'n_jobs'),
    );
    await assert.rejects(
      parallel.run([delayed(square)(2)], { nJobs: 2 } as never),
      /"nJobs": nJobs is an option of new Parallel\(options\)/,
    );
    await assert.rejects(
      parallel.run([delayed(square)(2)], { signl: undefined } as never),
      /did you mean signal\?/,
    );
    assert.deepEqual(await parallel.run([delayed(square)(3)], {}), [9]);
  });

  test('parallelConfig refuses before running fn', () => {
    let ran = false;
    assert.throws(
      () =>
        parallelConfig({ n_jobs: 2 } as never, () => {
          ran = true;
        }),
      refused(InvalidArgumentError, 'n_jobs', 'nJobs'),
    );
    assert.throws(
      () => parallelConfig({ signal: AbortSignal.timeout(1000) } as never, () => 1),
      /signal belongs/,
    );
    assert.equal(ran, false);
  });

  test('Memory and cache() refuse with MemoryError ERR_MEMORY_OPTION', () => {
    const isOptionError = (option: string, suggestion?: string) => (error: unknown) => {
      refused(MemoryError, option, suggestion)(error);
      assert.equal((error as MemoryError).code, 'ERR_MEMORY_OPTION');
      return true;
    };
    assert.throws(
      () => new Memory(null, { bytes_limit: '1G' } as never),
      isOptionError('bytes_limit', 'bytesLimit'),
    );
    assert.throws(() => new Memory(null, { verbse: 1 } as never), isOptionError('verbse', 'verbose'));
    assert.throws(() => new Memory(null, { location: '/tmp' } as never), /location is the first argument/);
    const memory = new Memory(null);
    assert.throws(
      () => memory.cache(square, { cache_validation_callback: () => true } as never),
      isOptionError('cache_validation_callback', 'cacheValidationCallback'),
    );
    assert.throws(
      () => memory.cache(square, { ignored: ['x'] } as never),
      isOptionError('ignored', 'ignore'),
    );
  });

  test('dump() refuses with PersistError ERR_DUMP_OPTION and writes nothing', async () => {
    const file = join(tempDir(), 'x.bin');
    await assert.rejects(dump(1, file, { compres: 3 } as never), (error: unknown) => {
      refused(PersistError, 'compres', 'compress')(error);
      assert.equal((error as PersistError).code, 'ERR_DUMP_OPTION');
      return true;
    });
    await assert.rejects(dump(1, file, { protocol: 4 } as never), /protocol has no equivalent/);
    assert.equal(existsSync(file), false);
  });

  test("the redis backend's backendOptions refuse unknown names before connecting", async () => {
    const parallel = new Parallel({ backend: 'redis', backendOptions: { queu: 'jobs', prefix: 'x' } });
    await assert.rejects(parallel.run([delayed(square)(2)]), refused(InvalidArgumentError, 'queu', 'queue'));
    const byUrl = new Parallel({ backend: 'redis', backendOptions: { url: 'redis://127.0.0.1:1' } });
    await assert.rejects(byUrl.run([delayed(square)(2)]), /give the Redis URL as connection/);
    await Promise.all([parallel.close(), byUrl.close()]);
  });
});
