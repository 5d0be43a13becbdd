/**
 * The progress bar behind `Parallel`'s `progress` option (and the `experiment` command).
 *
 * On a TTY it is a live one-line bar: done/total, rate, elapsed and ETA, redrawn at most 10 times a
 * second and cleared at the end. It is drawn here, not by a progress-bar package: one line rewritten
 * with `\r` is all it needs, and such packages bring five dependencies for string widths we do not need
 * (the line is ASCII apart from the bar's block characters, one column each). Off a TTY (a CI log, a file) it prints
 * plain joblib-style lines instead, rarely enough to keep the log readable; see `LineRule`.
 */
import { shortFormatTime, skipAtVerbosity } from './verbose.ts';

export interface ProgressReporter {
  /** Called after each completed batch; total is undefined while the input length is unknown (generators). */
  update(done: number, total: number | undefined): void;
  /** Called once at the end (success, error or abort); must leave the terminal clean. */
  finish(outcome: 'done' | 'failed' | 'aborted'): void;
  /**
   * Runs `write` (which prints whole lines) with the live bar out of the way: the bar's line is cleared
   * first and drawn again below what was written, so output never runs through it.
   */
  printAbove?(write: () => void): void;
}

/**
 * When to print a plain line off a TTY. A line is printed on an update when either
 * - the count crosses the next `fraction` of the total (default 0.1: at most ~10 lines a run, like
 *   joblib's `verbose=10`, which prints every `total // 10 + 1` tasks), or, when the total is unknown,
 *   when it crosses joblib's quadratic spacing (`_verbosity_filter` at verbose 10, `skipAtVerbosity`:
 *   lines after 1, 2, 5, 8, 13, 18, 25, ... tasks, so about √(2n) lines for n tasks);
 * - or `seconds` (default 10) have passed since the last line and the count moved, so a slow run
 *   still shows signs of life.
 * The closing line (`finished`, `failed` or `aborted`) is always printed.
 */
export interface LineRule {
  fraction?: number;
  seconds?: number;
}

export interface ProgressReporterOptions {
  /** Where to draw; default `process.stderr`. A bar is drawn only when `stream.isTTY` is true. */
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Shown before the bar and in brackets on plain lines; default `Parallel`. */
  label?: string;
  /** Frequency of the plain lines off a TTY. */
  verboseLinesEvery?: LineRule;
  /** Clock in milliseconds, for tests of the plain-line rule; default `performance.now`. */
  now?: () => number;
}

const DEFAULT_FRACTION = 0.1;
const DEFAULT_SECONDS = 10;
/** The bar is redrawn at most this many times a second (its timer, and updates coming faster). */
const FPS = 10;

/** A duration as joblib's `short_format_time` writes it: `4.2s`, `3.5min`, `1.2h`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)}min`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

/** Tasks per second with about three significant digits. */
export function formatRate(done: number, elapsedSeconds: number): string {
  if (done === 0 || elapsedSeconds <= 0) return '- tasks/s';
  const rate = done / elapsedSeconds;
  const digits = rate >= 100 ? 0 : rate >= 10 ? 1 : 2;
  return `${rate.toFixed(digits)} tasks/s`;
}

/** The text of the live bar, fitted into `width` columns (the bar itself shrinks first). */
export function renderBarLine(
  label: string,
  done: number,
  total: number | undefined,
  elapsedSeconds: number,
  width: number,
): string {
  const rate = formatRate(done, elapsedSeconds);
  const elapsed = `elapsed ${formatDuration(elapsedSeconds)}`;
  if (total === undefined) {
    return fit(`${label} ${done} done | ${rate} | ${elapsed}`, width);
  }
  const eta = done > 0 && done <= total ? formatDuration(((total - done) * elapsedSeconds) / done) : '?';
  const percent = total > 0 ? Math.min(100, Math.floor((100 * done) / total)) : 100;
  const tail = ` ${String(percent).padStart(3)}% ${done}/${total} | ${rate} | ${elapsed} | ETA ${eta}`;
  const room = width - label.length - tail.length - 3;
  if (room < 5) return fit(`${label}${tail}`, width);
  const barSize = Math.min(40, room);
  const progress = total > 0 ? Math.min(1, done / total) : 1;
  const full = Math.round(progress * barSize);
  return `${label} |${'\u2588'.repeat(full)}${'\u2591'.repeat(barSize - full)}|${tail}`;
}

function fit(text: string, width: number): string {
  return text.length <= width ? text : text.slice(0, Math.max(0, width));
}

/** The plain line joblib prints for a count: `[Parallel]: Done   5 out of   8 | elapsed:    1.2s ...`. */
export function renderPlainLine(
  label: string,
  done: number,
  total: number | undefined,
  elapsedSeconds: number,
  outcome?: 'done' | 'failed' | 'aborted',
): string {
  const count =
    total === undefined
      ? `${String(done).padStart(3)} tasks     `
      : `${String(done).padStart(3)} out of ${String(total).padStart(3)}`;
  const elapsed = `elapsed: ${shortFormatTime(elapsedSeconds)}`;
  let end = '';
  if (outcome !== undefined) end = outcome === 'done' ? ' finished' : ` ${outcome}`;
  else if (total !== undefined && done > 0 && done < total) {
    end = ` remaining: ${shortFormatTime(((total - done) * elapsedSeconds) / done)}`;
  }
  return `[${label}]: Done ${count} | ${elapsed}${end}`;
}

/** True when joblib's verbose-10 rule prints a line for some completed count in (`from`, `to`]. */
function crossesQuadraticStep(from: number, to: number): boolean {
  for (let index = from; index < to; index++) if (!skipAtVerbosity(index, 10)) return true;
  return false;
}

function isTTY(stream: NodeJS.WriteStream | NodeJS.WritableStream): stream is NodeJS.WriteStream {
  return (stream as Partial<NodeJS.WriteStream>).isTTY === true;
}

class BarReporter implements ProgressReporter {
  readonly #stream: NodeJS.WriteStream;
  readonly #label: string;
  readonly #start = performance.now();
  readonly #timer: NodeJS.Timeout;
  #done = 0;
  #total: number | undefined;
  #lastDrawAt = Number.NEGATIVE_INFINITY;
  #finished = false;

  constructor(stream: NodeJS.WriteStream, label: string) {
    this.#stream = stream;
    this.#label = label;
    // Redraws even without updates, so elapsed time and the rate move during a long task. Unref'd: a
    // bar never keeps the program alive.
    this.#timer = setInterval(() => this.#draw(), 1000 / FPS);
    this.#timer.unref();
    this.#draw();
  }

  update(done: number, total: number | undefined): void {
    if (this.#finished) return;
    this.#done = done;
    this.#total = total;
    if (performance.now() - this.#lastDrawAt >= 1000 / FPS) this.#draw();
  }

  printAbove(write: () => void): void {
    if (this.#finished) {
      write();
      return;
    }
    this.#stream.write('\r\u001b[2K');
    write();
    this.#draw();
  }

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#timer);
    this.#draw(); // the final count, briefly, then a clean line for what the program prints next
    this.#stream.write('\r\u001b[2K');
  }

  #draw(): void {
    this.#lastDrawAt = performance.now();
    // Leave the terminal's modes alone (no hidden cursor to restore if the process dies mid-run); the
    // line is fitted to the width instead, so it never wraps.
    // A pseudo-terminal may report 0 columns: then COLUMNS, then 80.
    const columns = this.#stream.columns || Number(process.env.COLUMNS) || 80;
    const width = Math.max(20, columns - 1);
    const elapsed = (this.#lastDrawAt - this.#start) / 1000;
    const line = renderBarLine(this.#label, this.#done, this.#total, elapsed, width);
    this.#stream.write(`\r${line}\u001b[K`);
  }
}

class LineReporter implements ProgressReporter {
  readonly #stream: NodeJS.WritableStream;
  readonly #label: string;
  readonly #fraction: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #start: number;
  #lastLineAt: number;
  #lastLineDone = 0;
  #done = 0;
  #total: number | undefined;
  #finished = false;

  constructor(stream: NodeJS.WritableStream, label: string, rule: LineRule, now: () => number) {
    this.#stream = stream;
    this.#label = label;
    this.#fraction = rule.fraction ?? DEFAULT_FRACTION;
    this.#intervalMs = (rule.seconds ?? DEFAULT_SECONDS) * 1000;
    this.#now = now;
    this.#start = now();
    this.#lastLineAt = this.#start;
  }

  update(done: number, total: number | undefined): void {
    if (this.#finished) return;
    this.#done = done;
    this.#total = total;
    if (done <= this.#lastLineDone) return;
    if (total !== undefined && done >= total) return; // the closing line reports the end
    const at = this.#now();
    let due = at - this.#lastLineAt >= this.#intervalMs;
    if (!due && total !== undefined) {
      const step = Math.max(1, Math.ceil(total * this.#fraction));
      due = Math.floor(done / step) > Math.floor(this.#lastLineDone / step);
    } else if (!due) {
      due = crossesQuadraticStep(this.#lastLineDone, done);
    }
    if (!due) return;
    this.#lastLineAt = at;
    this.#lastLineDone = done;
    this.#write(renderPlainLine(this.#label, done, total, (at - this.#start) / 1000));
  }

  finish(outcome: 'done' | 'failed' | 'aborted'): void {
    if (this.#finished) return;
    this.#finished = true;
    const elapsed = (this.#now() - this.#start) / 1000;
    this.#write(renderPlainLine(this.#label, this.#done, this.#total, elapsed, outcome));
  }

  #write(line: string): void {
    this.#stream.write(`${line}\n`);
  }
}

/**
 * A reporter for one run, starting its clock now. On a TTY it draws the live bar at once (0 done)
 * and keeps a redraw timer until `finish()`, which callers must always call (in a `finally`).
 */
export function createProgressReporter(options: ProgressReporterOptions = {}): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const label = options.label ?? 'Parallel';
  if (isTTY(stream)) return new BarReporter(stream, label);
  return new LineReporter(
    stream,
    label,
    options.verboseLinesEvery ?? {},
    options.now ?? (() => performance.now()),
  );
}
