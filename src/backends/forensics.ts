/**
 * What a crash or timeout error says about the task and its worker: a short summary of the task's
 * arguments, and the worker's memory as last seen, in words for the message and as fields.
 */
import { inspect } from 'node:util';
import type { WorkerForensics } from '../errors.ts';

/** About this many characters of a task's arguments go into an error. */
const ARGS_SUMMARY_CHARS = 200;

/** `(3, 'abc', { a: 1 })`, cut at about 200 characters. */
export function summarizeArgs(args: readonly unknown[] | undefined): string | undefined {
  if (!args) return undefined;
  let text: string;
  try {
    text = args
      .map((arg) =>
        inspect(arg, {
          depth: 2,
          breakLength: Number.POSITIVE_INFINITY,
          maxArrayLength: 10,
          maxStringLength: 80,
        }),
      )
      .join(', ');
  } catch {
    text = '(arguments that cannot be shown)';
  }
  text = `(${text})`;
  return text.length > ARGS_SUMMARY_CHARS ? `${text.slice(0, ARGS_SUMMARY_CHARS - 1)}…` : text;
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(0)} MB`;
}

/** The forensics as a sentence tail for the error's message: ` Arguments: (...). Peak memory: ...` */
export function describeForensics(details: WorkerForensics): string {
  const parts: string[] = [];
  if (details.argsSummary) parts.push(`Arguments: ${details.argsSummary}.`);
  if (details.peakRssBytes || details.peakHeapBytes) {
    const memory = [
      details.peakRssBytes ? `resident ${megabytes(details.peakRssBytes)}` : '',
      details.peakHeapBytes ? `heap ${megabytes(details.peakHeapBytes)}` : '',
    ].filter(Boolean);
    parts.push(`Worker's peak memory as last seen: ${memory.join(', ')}.`);
  }
  const tail = details.stderrTail?.filter((line) => line.trim() !== '');
  if (tail && tail.length > 0) parts.push(`Its last stderr lines:\n  ${tail.slice(-5).join('\n  ')}`);
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}
