/**
 * A worker process's stderr, passed on to ours line by line until the process starts dying: V8's
 * fatal-error report (`<--- Last few GCs --->`, `FATAL ERROR: ... heap out of memory`, the native stack
 * trace) and the worker's own last words are kept for the `WorkerCrashedError` (`workerStderr`)
 * instead of being dumped on the user's terminal on top of it. What a task writes itself still shows.
 */

/** How a dying process's output starts, at the beginning of a line. */
const CRASH_MARKERS = [
  '<--- Last few GCs --->',
  '<--- JS stacktrace --->',
  'FATAL ERROR:',
  '----- Native stack trace -----',
  '# Fatal error in',
  'joblib-ts worker: ',
];

/** Crash output kept per worker: the start of V8's report says what happened; the rest is stack. */
const KEPT_CHARS = 64 * 1024;

export class CrashOutputFilter {
  /** Output held back until the next line tells whether it opens a crash report. */
  private pending = '';
  private crash: string | undefined;
  /** Whether what was passed on so far ends a line: the held text then starts one. */
  private atLineStart = true;

  constructor(private readonly forward: (text: string) => void) {}

  /** The crash output seen so far, if the process began to die. */
  get captured(): string | undefined {
    return this.crash;
  }

  push(text: string): void {
    if (this.crash !== undefined) {
      this.keep(text);
      return;
    }
    const buffer = this.pending + text;
    this.pending = '';
    const crashAt = startOfCrash(buffer, this.atLineStart);
    if (crashAt >= 0) {
      if (crashAt > 0) this.forward(buffer.slice(0, crashAt));
      this.crash = '';
      this.keep(buffer.slice(crashAt));
      return;
    }
    // Held back: a partial last line that may still become a marker, and the empty lines before it
    // (V8 opens its report with one).
    const lastLine = buffer.lastIndexOf('\n') + 1;
    const tail = buffer.slice(lastLine);
    const couldOpen = lastLine > 0 || this.atLineStart;
    let cut =
      tail === '' || (couldOpen && CRASH_MARKERS.some((m) => m.startsWith(tail))) ? lastLine : buffer.length;
    cut = beforeEmptyLines(buffer, cut, this.atLineStart);
    if (cut > 0) {
      this.forward(buffer.slice(0, cut));
      this.atLineStart = buffer[cut - 1] === '\n';
    }
    this.pending = buffer.slice(cut);
  }

  /** The stream ended: what was held back was not a crash after all. */
  end(): void {
    if (this.pending && this.crash === undefined) this.forward(this.pending);
    this.pending = '';
  }

  private keep(text: string): void {
    const crash = this.crash ?? '';
    if (crash.length < KEPT_CHARS) this.crash = crash + text.slice(0, KEPT_CHARS - crash.length);
  }
}

/** Where a line of `text` opens with a crash marker (with the empty lines just before it), or -1. */
function startOfCrash(text: string, atLineStart: boolean): number {
  let lineStart = atLineStart ? 0 : text.indexOf('\n') + 1;
  if (lineStart === 0 && !atLineStart) return -1;
  for (;;) {
    if (CRASH_MARKERS.some((m) => text.startsWith(m, lineStart)))
      return beforeEmptyLines(text, lineStart, atLineStart);
    const end = text.indexOf('\n', lineStart);
    if (end < 0) return -1;
    lineStart = end + 1;
  }
}

/** `at` (a line start) moved back over the empty lines just before it. */
function beforeEmptyLines(text: string, at: number, atLineStart: boolean): number {
  let from = at;
  // The newline at from - 1 ends an empty line when the character before it ends a line too.
  while (from > 0 && text[from - 1] === '\n' && (from >= 2 ? text[from - 2] === '\n' : atLineStart)) from--;
  return from;
}

/** How many of a worker's last stderr lines a crash or timeout error shows. */
export const TAIL_LINES = 20;

/** The last lines a worker process wrote on stderr (each cut at 500 characters). */
export class StderrTail {
  private kept: string[] = [];
  private partial = '';

  push(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = (parts.pop() ?? '').slice(-500);
    for (const line of parts) {
      if (line.trim() === '') continue;
      this.kept.push(line.slice(0, 500));
      if (this.kept.length > TAIL_LINES) this.kept.shift();
    }
  }

  lines(): string[] {
    const lines = this.partial.trim() ? [...this.kept, this.partial] : [...this.kept];
    return lines.slice(-TAIL_LINES);
  }
}
