/**
 * Worker processes die with their caller: after `kill -9` of a program whose two workers spin in a CPU
 * loop (their event loops cannot hear the IPC channel close), both worker pids disappear, and nothing is
 * printed on the way. The wait is for a state (both pids gone), bounded by the test's timeout.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from './helpers.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const leftovers: number[] = [];
after(() => {
  for (const pid of leftovers) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

test('worker processes exit when their caller is killed mid-task, silently', {
  timeout: 60_000,
}, async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test/fixtures/programs/interrupt-spin.ts')],
    { cwd: repoRoot, env: { ...process.env, BACKEND: 'processes' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const pids = await new Promise<number[]>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', () => reject(new Error(`the program ended early: ${stdout}${stderr}`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      const found = [...stdout.matchAll(/spinning pid=(\d+)/g)].map((m) => Number(m[1]));
      if (found.length >= 2) resolve(found);
    });
  });
  leftovers.push(...pids);
  assert.ok(!pids.includes(child.pid as number), 'the workers are other processes');
  const exited = new Promise((resolve) => child.on('close', resolve));
  child.kill('SIGKILL');
  await exited;
  while (pids.some(alive)) await sleep(50);
  // The workers shared the caller's stderr pipe: no EPIPE stack, no trace of any kind.
  assert.equal(stderr, '');
});
