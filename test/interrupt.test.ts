/**
 * Ctrl-C leaves nothing behind: by the time the program's exit is seen, every worker process it
 * started is gone (checked by pid) and every worker thread has exited, and the exit code is 130.
 * No sleeps: SIGINT is sent once both workers have said on stdout that they spin.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from './helpers.ts';

/** What `kill(pid, 0)` says: alive, or the error code (ESRCH: no such process). */
function probe(pid: number): 'alive' | string {
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Each worker's pid, and what `kill(pid, 0)` said at the moment the program's 'exit' fired. */
  atExit: Map<number, string>;
  workers: { pid: number; thread: number }[];
  parentPid: number;
  stdout: string;
  stderr: string;
}

const started = new Set<ChildProcess>();
after(() => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function interruptSpinning(backend: 'threads' | 'processes'): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    // node --import tsx, not the tsx CLI: the CLI is a second process between us and the program.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test/fixtures/programs/interrupt-spin.ts')],
      { cwd: repoRoot, env: { ...process.env, BACKEND: backend }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    started.add(child);
    let stdout = '';
    let stderr = '';
    let sent = false;
    const workers: { pid: number; thread: number }[] = [];
    let atExit = new Map<number, string>();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      workers.length = 0;
      for (const m of stdout.matchAll(/spinning pid=(\d+) thread=(\d+)/g)) {
        workers.push({ pid: Number(m[1]), thread: Number(m[2]) });
      }
      if (!sent && workers.length >= 2) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    // 'exit' (the program is gone, its output may still be in flight), not 'close': this is the moment.
    child.on('exit', () => {
      atExit = new Map(workers.map((w) => [w.pid, probe(w.pid)]));
    });
    child.on('close', (code, signal) => {
      started.delete(child);
      const parentPid = Number(/parent pid=(\d+)/.exec(stdout)?.[1]);
      resolve({ code, signal, atExit, workers, parentPid, stdout, stderr });
    });
  });
}

describe('Ctrl-C waits for every worker to exit', () => {
  test('processes: no worker pid is alive when the program exits, and the code is 130', {
    timeout: 60_000,
  }, async () => {
    const out = await interruptSpinning('processes');
    assert.equal(out.code, 130, `stdout: ${out.stdout}\nstderr: ${out.stderr}`);
    assert.equal(out.workers.length, 2, out.stdout);
    const pids = out.workers.map((w) => w.pid);
    assert.equal(new Set(pids).size, 2, 'two worker processes');
    assert.ok(!pids.includes(out.parentPid), 'the tasks ran in child processes');
    for (const [pid, state] of out.atExit) assert.equal(state, 'ESRCH', `worker process ${pid} at exit`);
    assert.match(out.stderr, /interrupted by Ctrl-C/);
    assert.doesNotMatch(out.stdout, /run returned/);
    assert.match(out.stdout, /exit code=130/);
  });

  test('threads: every worker thread has exited before the program exits with 130', {
    timeout: 60_000,
  }, async () => {
    const out = await interruptSpinning('threads');
    assert.equal(out.code, 130, `stdout: ${out.stdout}\nstderr: ${out.stderr}`);
    assert.equal(out.workers.length, 2, out.stdout);
    assert.equal(new Set(out.workers.map((w) => w.thread)).size, 2, 'two worker threads');
    assert.ok(
      out.workers.every((w) => w.pid === out.parentPid && w.thread > 0),
      'the tasks ran in threads',
    );
    // The program's own exit listener counts the threads that have not emitted 'exit' yet.
    assert.match(out.stdout, /exit code=130 liveThreads=0\n/);
    assert.equal(out.atExit.get(out.parentPid), 'ESRCH');
    assert.doesNotMatch(out.stdout, /run returned/);
  });
});
