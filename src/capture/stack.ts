/**
 * Stack frames of code sent by value name `<file>?joblib-ts-by-value:<line>:<column>`, in the
 * coordinates of the code V8 ran in the caller (for TypeScript under tsx: the JavaScript tsx made).
 * The caller holds that file's source map: these frames become the original file and line.
 */
import { findSourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { SerializedThrown } from '../errors.ts';
import { BY_VALUE_FILE_MARK } from '../wire/function-ref.ts';

const FRAME = new RegExp(
  `([^\\s(]+?)${BY_VALUE_FILE_MARK.replace(/[-?]/g, '\\$&')}:(\\d+):(\\d+)(?=\\)?$)`,
  'gm',
);

function original(file: string, line: number, column: number): string {
  let map: ReturnType<typeof findSourceMap> | undefined;
  try {
    map = findSourceMap(file.startsWith('file:') ? fileURLToPath(file) : file) ?? findSourceMap(file);
  } catch {
    map = undefined;
  }
  const entry = map?.findEntry(line - 1, column - 1);
  if (entry && 'originalLine' in entry && typeof entry.originalLine === 'number')
    return `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  return `${file}:${line}:${column}`;
}

/** A stack with the frames of code sent by value pointing at their original source. */
export function mapByValueStack(stack: string): string {
  if (!stack.includes(BY_VALUE_FILE_MARK)) return stack;
  return stack.replace(FRAME, (_, file: string, line: string, column: string) =>
    original(file, Number(line), Number(column)),
  );
}

/** Maps the stacks of a thrown error as it came from a worker, its causes and aggregated errors included. */
export function mapThrownStacks(thrown: SerializedThrown, depth = 0): void {
  if (thrown.kind !== 'error' || depth > 8) return;
  const { error } = thrown;
  if (error.stack) error.stack = mapByValueStack(error.stack);
  if (error.cause) mapThrownStacks(error.cause, depth + 1);
  for (const inner of error.errors ?? []) mapThrownStacks(inner, depth + 1);
}
