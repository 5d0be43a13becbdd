/**
 * The progress bar behind `Parallel`'s `progress` option (and the `experiment` command).
 *
 * On a TTY it is a live one-line bar drawn by `cli-progress`: done/total, rate, elapsed and ETA,
 * redrawn at most 10 times a second and cleared at the end. Off a TTY (a CI log, a file) it prints
 * plain joblib-style lines instead, rarely enough to keep the log readable; see `LineRule`.
 */
import cliProgress from 'cli-progress';
import { shortFormatTime, skipAtVerbosity } from './verbose.ts';

export interface ProgressReporter {
  /** Called after each completed batch; total is undefined while the input length is unknown (generators). */
  update(done: number, total: number | undefined): void;
  /** Called once at the end (success, error or abort); must leave the terminal clean. */
  finish(outcome: 'done' | 'failed' | 'aborted'): void;
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
/** cli-progress redraws at most this many times a second (its timer, and synchronous updates). */
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
  return `${label} |${cliProgress.Format.BarFormat(progress, {
    barsize: barSize,
    barCompleteString: '\u2588'.repeat(barSize),
    barIncompleteString: '\u2591'.repeat(barSize),
    barGlue: '',
  })}|${tail}`;
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
  readonly #bar: cliProgress.SingleBar;
  #total: number | undefined;
  #finished = false;

  constructor(stream: NodeJS.WriteStream, label: string) {
    this.#bar = new cliProgress.SingleBar({
      stream,
      fps: FPS,
      clearOnComplete: true,
      // Leave the terminal's modes alone: no hidden cursor or disabled wrapping to restore if the
      // process dies mid-run; the line is fitted to the width instead.
      hideCursor: false,
      linewrap: true,
      gracefulExit: false,
      format: (_options, params) =>
        renderBarLine(
          label,
          params.value,
          this.#total,
          (Date.now() - params.startTime) / 1000,
          Math.max(20, params.maxWidth - 1),
        ),
    });
    this.#bar.start(0, 0);
  }

  update(done: number, total: number | undefined): void {
    if (this.#finished) return;
    this.#total = total;
    if (total !== undefined) this.#bar.setTotal(total);
    this.#bar.update(done);
  }

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    // stop() draws the last frame (the final count), then clears the line.
    this.#bar.stop();
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
