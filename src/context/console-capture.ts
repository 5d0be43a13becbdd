/**
 * Catches what a task writes to stdout and stderr (`console.log`, `process.stdout.write`...) and hands
 * it over line by line with the task it came from, instead of letting it reach the terminal on its own:
 * a worker thread's output would otherwise arrive late, after the task's result, and a live progress
 * bar would be torn by it. Output written outside any task passes through untouched. Used in workers,
 * and in the caller's thread for tasks that run there (`sequential`).
 */
import { currentScope, type SetupScope, type TaskScope } from './task-context.ts';

export type OutputStream = 'stdout' | 'stderr';
/**
 * Receives each complete line (without its newline) written inside `scope`; returns false when the scope
 * is not one of its own (then the next sink is asked, and with none, the line is written as it is).
 */
export type LineSink = (scope: TaskScope | SetupScope, stream: OutputStream, line: string) => boolean;

/** A worker's sink, and the caller's thread's for `sequential` (a nested run in a worker has both). */
const sinks: LineSink[] = [];
/** True while the sink runs: what it writes (the caller printing a line) goes to the terminal. */
let inSink = false;
/** A line begun and not ended yet, per scope and stream. */
const partial = new WeakMap<object, { stdout?: string; stderr?: string }>();

type Write = (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;

function hook(stream: NodeJS.WriteStream, name: OutputStream): void {
  const original = stream.write as Write;
  const write: Write = function (this: unknown, chunk, encoding, callback) {
    const scope = sinks.length > 0 && !inSink ? currentScope() : undefined;
    if (!scope) return original.call(stream, chunk, encoding, callback);
    const text =
      typeof chunk === 'string'
        ? chunk
        : Buffer.from(chunk as Uint8Array).toString(
            typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
          );
    const held = partial.get(scope) ?? {};
    const lines = ((held[name] ?? '') + text).split('\n');
    const rest = lines.pop() as string;
    if (rest) held[name] = rest;
    else delete held[name];
    if (held.stdout !== undefined || held.stderr !== undefined) partial.set(scope, held);
    else partial.delete(scope);
    for (const line of lines) deliver(scope, name, line);
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  };
  stream.write = write as NodeJS.WriteStream['write'];
}

function deliver(scope: TaskScope | SetupScope, stream: OutputStream, line: string): void {
  inSink = true;
  try {
    for (const sink of sinks) if (sink(scope, stream, line)) return;
    process[stream].write(`${line}\n`);
  } finally {
    inSink = false;
  }
}

/** Starts catching task output for `to` (the streams are hooked once per thread; a sink is added once). */
export function captureOutput(to: LineSink): void {
  if (sinks.length === 0) {
    hook(process.stdout, 'stdout');
    hook(process.stderr, 'stderr');
  }
  if (!sinks.includes(to)) sinks.push(to);
}

/** A task has ended: the line it left unfinished is delivered as it is. */
export function flushOutput(scope: TaskScope | SetupScope): void {
  const held = partial.get(scope);
  if (!held) return;
  partial.delete(scope);
  if (held.stdout !== undefined) deliver(scope, 'stdout', held.stdout);
  if (held.stderr !== undefined) deliver(scope, 'stderr', held.stderr);
}

/** Writes to the real stderr whatever scope the code runs in (a worker's own last words). */
export function writeUncaptured(stream: OutputStream, text: string): void {
  inSink = true;
  try {
    process[stream].write(text);
  } finally {
    inSink = false;
  }
}
