/**
 * A function typed into the Node REPL runs in workers: `node -i` is fed a session through its stdin, as
 * a user would type it (require the package, define a function and a class, run them on threads and
 * processes), and the results are read from what it prints. The REPL loads the built package by name
 * (Node's self-reference: this repository is the package).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { repoRoot, runProgram } from './helpers.ts';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Feeds `lines` to `node -i`, waits for `done` in its output, leaves with `.exit`; returns the output. */
function replSession(lines: readonly string[], done: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-i'], {
      cwd: repoRoot,
      env: { ...process.env, NODE_NO_READLINE: '1', NODE_OPTIONS: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let exiting = false;
    // Bounded: a session that never prints its results is killed, and the test fails with its output.
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (!exiting && done.test(output)) {
        exiting = true;
        child.stdin.end('.exit\n');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (exiting) resolve(output);
      else reject(new Error(`the REPL ended (code ${code}) before its results:\n${output}`));
    });
    child.stdin.write(`${lines.join('\n')}\n`);
  });
}

describe('functions typed into the Node REPL', { timeout: 180_000 }, () => {
  before(async () => {
    if (!existsSync(join(repoRoot, 'dist/index.cjs'))) {
      const build = await runProgram(npm, ['run', 'build'], { timeoutMs: 150_000 });
      assert.equal(build.code, 0, build.stderr);
    }
  });

  test('run in workers on threads and processes, by value, with what they capture', async () => {
    const output = await replSession(
      [
        "const { Parallel, delayed } = require('joblib-ts');",
        'const weights = new Map([[1, 10], [2, 20], [3, 30]]);',
        'function weigh(x) { return x * weights.get(x); }',
        'class Point { constructor(x, y) { this.x = x; this.y = y; } norm2() { return this.x ** 2 + this.y ** 2; } }',
        // As typed: the REPL reads the next line while an `await` waits, so the runs are chained.
        'new Parallel({ nJobs: 2 }).run([1, 2, 3].map((x) => delayed(weigh)(x)))' +
          ".then((r) => { console.log('THREADS ' + JSON.stringify(r));" +
          " return new Parallel({ nJobs: 2, backend: 'processes' }).run([3, 4].map((x) => delayed((p) => p.norm2())(new Point(x, 1)))); })" +
          ".then((r) => console.log('PROCESSES ' + JSON.stringify(r)), (e) => console.log('FAILED ' + e.stack));",
      ],
      /PROCESSES \[.*\]|FAILED [\s\S]*\n> /,
    );
    assert.match(output, /THREADS \[10,40,90\]/, output);
    assert.match(output, /PROCESSES \[10,17\]/, output);
    assert.doesNotMatch(output, /FAILED|Error/, output);
  });
});
