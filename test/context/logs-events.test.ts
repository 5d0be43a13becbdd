/**
 * Issue 16: workers' output comes back with its task, before the task's result, tagged, and above a live
 * progress bar; `onEvent` gives a complete, ordered stream of each run on every local backend.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { delayed, type JoblibEvent } from '../../src/index.ts';
import { logPrefix } from '../../src/progress/logs.ts';
import { chatty, exitsAt, failsAt, nestedThenSpeaks } from '../fixtures/context-tasks.ts';
import { openParallel as parallel, repoRoot, runProgram } from '../helpers.ts';

/** The terminal's "erase to the end of the line" (ESC [ K), which the bar ends its line with. */
const ERASE_TO_END = new RegExp(`${String.fromCharCode(27)}\\[[0-9]*K`, 'g');
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const BACKENDS = ['sequential', 'threads', 'processes'] as const;

/** The lines `chatty(i)` writes, as log events say them. */
function chattyLines(i: number): string[] {
  return [
    `stdout first line of ${i}`,
    `stderr error line of ${i}`,
    `stdout second line of ${i}`,
    `stdout unfinished ${i}`,
  ];
}

/**
 * Checks a run's events: run-start first and run-end last, once each; each task done at most once; a
 * task's logs and reports all before its task-done; run-end's count is the tasks done.
 */
function checkRun(events: JoblibEvent[]): void {
  assert.equal(events[0]?.type, 'run-start');
  assert.equal(events.at(-1)?.type, 'run-end');
  assert.equal(events.filter((e) => e.type === 'run-start' || e.type === 'run-end').length, 2);
  const done = new Set<number>();
  for (const event of events) {
    if (event.type === 'task-done') {
      assert.ok(!done.has(event.index), `task ${event.index} done twice`);
      done.add(event.index);
    }
    if ((event.type === 'log' || event.type === 'report') && event.index !== undefined)
      assert.ok(!done.has(event.index), `a ${event.type} of task ${event.index} came after its result`);
  }
  const end = events.at(-1);
  assert.equal(end?.type === 'run-end' ? end.completed : -1, done.size);
  const runId = events[0]?.runId;
  assert.ok(events.every((e) => e.runId === runId));
}

describe("logs: 'tagged'", () => {
  for (const backend of BACKENDS) {
    test(`${backend}: every line of 100 tasks arrives with its task's index, before that task's result`, async () => {
      const events: JoblibEvent[] = [];
      const p = parallel({ backend, nJobs: 2, logs: 'silent', onEvent: (event) => events.push(event) });
      const results = await p.run(range(100).map((i) => delayed(chatty)(i)));
      assert.deepEqual(results, range(100));
      checkRun(events);
      for (const i of range(100)) {
        const mine = events.filter((e) => 'index' in e && e.index === i);
        assert.deepEqual(
          mine.map((e) => (e.type === 'log' ? `${e.stream} ${e.line}` : e.type)),
          [...chattyLines(i), 'task-done'],
          `task ${i}`,
        );
      }
    });
  }

  test('threads: a task that ran a nested (sequential) run still has its own lines captured', async () => {
    const events: JoblibEvent[] = [];
    const p = parallel({
      backend: 'threads',
      nJobs: 2,
      logs: 'silent',
      onEvent: (event) => events.push(event),
    });
    assert.deepEqual(
      await p.run(range(4).map((i) => delayed(nestedThenSpeaks)(i))),
      range(4).map((i) => [1000 + i]),
    );
    for (const i of range(4)) {
      const mine = events
        .filter((e) => e.type === 'log' && e.index === i)
        .map((e) => e.type === 'log' && e.line);
      assert.deepEqual(mine, [`outer line of ${i}`]);
    }
  });

  test('the caller prints each line tagged with its task, to the stream it was written to', async () => {
    const program = join(repoRoot, 'test/fixtures/logs-program.ts');
    const run = await runProgram(
      process.execPath,
      ['--import', 'tsx', program, 'processes', 'tagged', 'none', '100'],
      {
        timeoutMs: 120_000,
      },
    );
    assert.equal(run.code, 0, run.stderr);
    const out = run.stdout.split('\n');
    const err = run.stderr.split('\n');
    for (const i of range(100)) {
      const tag = logPrefix(i);
      assert.equal(out.filter((l) => l === `${tag}first line of ${i}`).length, 1, `task ${i} stdout`);
      assert.equal(out.filter((l) => l === `${tag}unfinished ${i}`).length, 1, `task ${i} unfinished`);
      assert.equal(err.filter((l) => l === `${tag}error line of ${i}`).length, 1, `task ${i} stderr`);
      // In order within the task.
      assert.ok(out.indexOf(`${tag}first line of ${i}`) < out.indexOf(`${tag}second line of ${i}`));
    }
  });

  test('under a live progress bar on a pseudo-terminal, lines print above the bar, never through it', async () => {
    const program = join(repoRoot, 'test/fixtures/logs-program.ts');
    const pty = join(repoRoot, 'test/fixtures/pty-run.py');
    const run = await runProgram(
      'python3',
      [pty, process.execPath, '--import', 'tsx', program, 'threads', 'tagged', 'bar', '100'],
      { timeoutMs: 120_000 },
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    // The terminal's text cut where the cursor goes back to the line's start or to a new line.
    const segments = run.stdout.split(/\r|\n/).map((s) => s.replace(ERASE_TO_END, ''));
    const bars = segments.filter((s) => s.includes('Parallel(nJobs=2)'));
    assert.ok(bars.length > 0, 'the bar was drawn');
    for (const segment of segments) {
      const isLog = /\[task \d+\]/.test(segment);
      const isBar = segment.includes('Parallel(nJobs=2)') || /[\u2588\u2591]/.test(segment);
      assert.ok(!(isLog && isBar), `a log line ran through the bar: ${JSON.stringify(segment)}`);
      if (isLog)
        assert.match(
          segment.replace('\u001b[2K', ''),
          /^\[task \d+\] (first line|error line|second line|unfinished)/,
        );
    }
    for (const i of range(100))
      assert.ok(
        segments.some((s) => s.endsWith(`[task ${i}] first line of ${i}`)),
        `task ${i}'s line`,
      );
    assert.match(run.stdout, /RESULTS \[0,1,2/);
  });
});

describe('onEvent', () => {
  for (const backend of BACKENDS) {
    test(`${backend}: a run that succeeds: run-start, each task done once, run-end with the count`, async () => {
      const events: JoblibEvent[] = [];
      const p = parallel({ backend, nJobs: 2, seed: 7, onEvent: (event) => events.push(event) });
      await p.run(range(50).map((i) => delayed(failsAt)(i, -1)));
      checkRun(events);
      const start = events[0];
      assert.ok(start?.type === 'run-start');
      assert.equal(start.total, 50);
      assert.equal(start.seed, 7);
      assert.equal(start.backend, p.backendName === 'sequential' ? 'SequentialBackend' : start.backend);
      const end = events.at(-1);
      assert.ok(end?.type === 'run-end');
      assert.deepEqual([end.status, end.completed, end.failed], ['done', 50, 0]);
      const done = events.filter((e) => e.type === 'task-done');
      assert.deepEqual(
        done.map((e) => e.index).sort((a, b) => a - b),
        range(50),
      );
      assert.ok(done.every((e) => e.type === 'task-done' && e.attempt === 1 && e.durationMs >= 0));
    });

    test(`${backend}: a run that fails: run-end says failed, and no task after the failure is done`, async () => {
      const events: JoblibEvent[] = [];
      const p = parallel({ backend, nJobs: 2, batchSize: 1, onEvent: (event) => events.push(event) });
      await assert.rejects(p.run(range(30).map((i) => delayed(failsAt)(i, 20))), /task 20 fails/);
      checkRun(events);
      const end = events.at(-1);
      assert.ok(end?.type === 'run-end');
      assert.equal(end.status, 'failed');
      assert.equal(end.failed, 1);
      assert.ok(!events.some((e) => e.type === 'task-done' && e.index === 20));
    });
  }

  test('a run aborted before it starts still has its run-start and run-end (aborted)', async () => {
    const events: JoblibEvent[] = [];
    const p = parallel({ backend: 'threads', nJobs: 2, onEvent: (event) => events.push(event) });
    await assert.rejects(p.run([delayed(failsAt)(0, -1)], { signal: AbortSignal.abort() }));
    assert.deepEqual(
      events.map((e) => (e.type === 'run-end' ? `${e.type} ${e.status}` : e.type)),
      ['run-start', 'run-end aborted'],
    );
  });

  test('a listener that throws does not break the run', async () => {
    const p = parallel({
      backend: 'threads',
      nJobs: 2,
      onEvent: () => {
        throw new Error('listener bug');
      },
    });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    try {
      assert.deepEqual(await p.run(range(5).map((i) => delayed(failsAt)(i, -1))), range(5));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(warnings.filter((w) => w.includes('listener bug')).length, 1);
    } finally {
      process.off('warning', onWarning);
    }
  });

  // Last: their pools of their own retire the idle shared ones, which a later test would start again.
  for (const backend of ['threads', 'processes'] as const) {
    test(`${backend}: workers started for the run and a crashed worker are events of the run, before its end`, async () => {
      const events: JoblibEvent[] = [];
      // A memory cap no other test uses: a pool of its own (runs of every nJobs share one), so that its
      // workers start during this run.
      const p = parallel({
        backend,
        nJobs: 3,
        maxWorkerMemoryMb: 1234,
        batchSize: 1,
        onEvent: (event) => events.push(event),
      });
      await assert.rejects(p.run(range(12).map((i) => delayed(exitsAt)(i, 9))));
      checkRun(events);
      const started = events.filter((e) => e.type === 'worker-started');
      assert.ok(started.length >= 1 && started.length <= 3, `${started.length} workers started`);
      const exited = events.filter((e) => e.type === 'worker-exited');
      assert.ok(
        exited.some((e) => e.type === 'worker-exited' && e.exitCode === 3),
        'the crash is an event of the run',
      );
    });
  }
});
