/**
 * Issue 16's onEvent test with failures, retries and a crash (with issue 15's errorMode 'settled' and
 * retries): on sequential, threads and processes the stream of a run is complete and validly ordered
 * (the checks are in event-stream.ts; backends/redis/events.test.ts runs them on redis).
 */
import { describe, test } from 'node:test';
import type { JoblibEvent } from '../src/index.ts';
import { checkRetriesRun, retriesTasks } from './event-stream.ts';
import { openParallel, tempDir } from './helpers.ts';

describe('onEvent with errorMode settled, retries and a crash', () => {
  for (const backend of ['sequential', 'threads', 'processes'] as const) {
    // On `sequential` the tasks run in the caller's own thread: a task that ends its worker would end
    // the test process itself, so there the crash task is an ordinary one (the failures and the retry
    // stay); every other check is the same.
    const crash = backend !== 'sequential';
    test(`${backend}: a complete, validly ordered stream`, { timeout: 120_000 }, async () => {
      const dir = tempDir('joblib-events-retries-');
      const events: JoblibEvent[] = [];
      const p = openParallel({
        backend,
        nJobs: 2,
        batchSize: 2,
        retries: 1,
        onEvent: (event) => events.push(event),
      });
      const entries = await p.run(retriesTasks(dir, crash), { errorMode: 'settled' });
      checkRetriesRun(entries, events, crash);
    });
  }

  test('nJobs 1 (the sequential backend by default): the same stream', { timeout: 120_000 }, async () => {
    const dir = tempDir('joblib-events-retries-');
    const events: JoblibEvent[] = [];
    const p = openParallel({ nJobs: 1, retries: 1, onEvent: (event) => events.push(event) });
    const entries = await p.run(retriesTasks(dir, false), { errorMode: 'settled' });
    checkRetriesRun(entries, events, false);
  });
});
