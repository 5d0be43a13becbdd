import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  createProgressReporter,
  formatDuration,
  renderBarLine,
  renderPlainLine,
} from '../../src/progress/bar.ts';

/** A stream that looks like a terminal to the reporter and keeps everything written to it. */
class FakeTTY extends Writable {
  readonly isTTY = true;
  readonly columns: number;
  output = '';
  constructor(columns = 100) {
    super({ decodeStrings: false });
    this.columns = columns;
  }
  override _write(chunk: string | Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.output += chunk.toString();
    callback();
  }
}

/**
 * Replays terminal output onto a screen of lines: printable text, \r, \n, cursor to column (CSI n G),
 * erase in line (CSI 0/1/2 K), save/restore cursor (ESC 7 / ESC 8); other CSI sequences are ignored.
 * Returns the screen, each line right-trimmed, and every frame drawn (the line just before each erase).
 */
function replay(output: string): { screen: string[]; frames: string[] } {
  const screen: string[][] = [[]];
  const frames: string[] = [];
  let row = 0;
  let col = 0;
  let saved: [number, number] = [0, 0];
  const line = (): string[] => {
    while (screen.length <= row) screen.push([]);
    return screen[row]!;
  };
  const text = (r: number) => (screen[r] ?? []).join('').replace(/\s+$/, '');
  for (let i = 0; i < output.length; i++) {
    const ch = output[i]!;
    if (ch === '\x1b') {
      const next = output[i + 1];
      if (next === '7') saved = [row, col];
      else if (next === '8') [row, col] = saved;
      if (next !== '[') {
        i += 1;
        continue;
      }
      const match = /^\[([0-9;?]*)([A-Za-z])/.exec(output.slice(i + 1));
      assert.ok(match, `unterminated escape at ${i}`);
      const [whole, arg = '', cmd] = match;
      i += whole.length;
      if (cmd === 'G') col = Math.max(0, Number(arg || '1') - 1);
      else if (cmd === 'K') {
        frames.push(text(row));
        const cells = line();
        if (arg === '' || arg === '0') cells.length = Math.min(cells.length, col);
        else if (arg === '1') for (let c = 0; c <= col && c < cells.length; c++) cells[c] = ' ';
        else cells.length = 0;
      }
    } else if (ch === '\r') col = 0;
    else if (ch === '\n') {
      row += 1;
      col = 0;
      line();
    } else {
      const cells = line();
      while (cells.length < col) cells.push(' ');
      cells[col] = ch;
      col += 1;
    }
  }
  return { screen: screen.map((_, r) => text(r)), frames: frames.filter((f) => f !== '') };
}

const BAR_MODULE = new URL('../../src/progress/bar.ts', import.meta.url).href;
const PTY_CHILD = `
import { setTimeout as sleep } from 'node:timers/promises';
const { createProgressReporter } = await import(${JSON.stringify(BAR_MODULE)});
process.stdout.write('child isTTY=' + (process.stderr.isTTY === true) + '\\n');
const reporter = createProgressReporter({ label: 'pty' });
for (let done = 1; done <= 12; done++) {
  await sleep(15);
  reporter.update(done, 12);
}
reporter.finish('done');
process.stdout.write('after the bar\\n');
`;

describe('progress bar on a TTY', () => {
  it('draws done/total, rate, elapsed and ETA, ends at total/total and clears itself', () => {
    const tty = new FakeTTY(100);
    const reporter = createProgressReporter({ stream: tty, label: 'Parallel' });
    for (let done = 1; done <= 8; done++) reporter.update(done, 8);
    reporter.finish('done');
    const { screen, frames } = replay(tty.output);
    const last = frames.at(-1);
    assert.ok(last, 'the bar drew at least one frame');
    assert.match(
      last,
      /^Parallel \|\u2588+\| 100% 8\/8 \| (?:[\d.]+|-) tasks\/s \| elapsed [\d.]+s \| ETA 0\.0s$/,
    );
    assert.ok(
      frames.every((f) => f.length <= 100),
      'every frame fits the terminal width',
    );
    assert.deepEqual(
      screen.filter((l) => l !== ''),
      [],
      'nothing is left on the screen',
    );
    // finish() is idempotent and later updates draw nothing.
    const length = tty.output.length;
    reporter.update(9, 8);
    reporter.finish('failed');
    assert.equal(tty.output.length, length);
  });

  it('shows the count and rate without an ETA while the total is unknown', () => {
    const tty = new FakeTTY(80);
    const reporter = createProgressReporter({ stream: tty, label: 'gen' });
    for (let done = 1; done <= 5; done++) reporter.update(done, undefined);
    reporter.finish('aborted');
    const { screen, frames } = replay(tty.output);
    assert.match(frames.at(-1) ?? '', /^gen 5 done \| (?:[\d.]+|-) tasks\/s \| elapsed [\d.]+s$/);
    assert.doesNotMatch(frames.join('\n'), /ETA/);
    assert.deepEqual(
      screen.filter((l) => l !== ''),
      [],
    );
  });

  it('shrinks the bar, then cuts the line, to fit narrow terminals', () => {
    const wide = renderBarLine('Parallel', 3, 10, 1.5, 200);
    const narrow = renderBarLine('Parallel', 3, 10, 1.5, 70);
    assert.ok(wide.length > narrow.length);
    assert.ok(narrow.length <= 70);
    assert.match(narrow, /30% 3\/10/);
    assert.ok(renderBarLine('Parallel', 3, 10, 1.5, 30).length <= 30);
  });

  it('runs in a real pseudo-terminal (script from util-linux) and leaves it clean', async (t) => {
    if (!existsSync('/usr/bin/script')) {
      t.skip('util-linux script is not installed');
      return;
    }
    // The child draws a bar on its real stderr, a TTY under `script`, then prints a line after it.
    const child = spawn(
      'script',
      ['-qfec', `${process.execPath} --import tsx --input-type=module -e "$BAR_CHILD_SCRIPT"`, '/dev/null'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, COLUMNS: '100', LINES: '24', BAR_CHILD_SCRIPT: PTY_CHILD },
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, output);
    const { screen, frames } = replay(output.replaceAll('\r\n', '\n'));
    assert.ok(output.includes('child isTTY=true'), output);
    const bars = frames.filter((f) => f.startsWith('pty |'));
    assert.ok(bars.length >= 1, JSON.stringify(output));
    assert.match(bars.at(-1)!, / 100% 12\/12 \| /);
    assert.deepEqual(
      screen.filter((l) => l !== ''),
      ['child isTTY=true', 'after the bar'],
      JSON.stringify(output),
    );
  });
});

describe('progress lines off a TTY', () => {
  function capture(): { stream: Writable; lines: () => string[] } {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
  }

  it('prints about every 10% of a known total, then a closing line', () => {
    const { stream, lines } = capture();
    let now = 0;
    const reporter = createProgressReporter({ stream, now: () => now });
    for (let done = 1; done <= 100; done++) {
      now += 10; // 10 ms a task: the time rule never fires
      reporter.update(done, 100);
    }
    reporter.finish('done');
    const out = lines();
    assert.equal(out.length, 10, out.join('\n'));
    assert.equal(out[0], '[Parallel]: Done  10 out of 100 | elapsed:    0.1s remaining:    0.9s');
    assert.equal(out.at(-1), '[Parallel]: Done 100 out of 100 | elapsed:    1.0s finished');
    assert.ok(
      out.every((l) => !l.includes('\x1b')),
      'no escape codes in a log',
    );
  });

  it('follows joblib quadratic spacing for unknown totals and adds a line after a quiet spell', () => {
    const { stream, lines } = capture();
    let now = 0;
    const reporter = createProgressReporter({
      stream,
      label: 'gen',
      now: () => now,
      verboseLinesEvery: { seconds: 5 },
    });
    for (let done = 1; done <= 30; done++) reporter.update(done, undefined);
    const counts = lines().map((l) => Number(/Done +(\d+)/.exec(l)?.[1]));
    assert.deepEqual(counts, [1, 2, 5, 8, 13, 18, 25]);
    now = 6000;
    reporter.update(31, undefined);
    reporter.finish('failed');
    const out = lines();
    assert.equal(out.at(-2), '[gen]: Done  31 tasks      | elapsed:    6.0s');
    assert.equal(out.at(-1), '[gen]: Done  31 tasks      | elapsed:    6.0s failed');
  });

  it('formats durations and lines as joblib does', () => {
    assert.equal(formatDuration(4.21), '4.2s');
    assert.equal(formatDuration(210), '3.5min');
    assert.equal(formatDuration(7200), '2.0h');
    assert.equal(
      renderPlainLine('P', 3, 8, 1.5, 'aborted'),
      '[P]: Done   3 out of   8 | elapsed:    1.5s aborted',
    );
  });
});
