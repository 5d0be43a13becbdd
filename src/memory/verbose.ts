/**
 * The lines a `Memory` prints at each verbosity level, shaped like Python joblib's so that users who know
 * one recognise the other: 1+ a banner around every computed call, 5+ cache hits, 11+ entry paths.
 */
import { previewValue } from './preview-value.ts';

/** Where the lines go, and from which level on. */
export interface VerboseLog {
  readonly verbose: number;
  write(line: string): void;
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s.toFixed(1)}s, ${(s / 60).toFixed(1)}min`;
}

/** `label(arg, arg, ...)`, cut to 200 characters. */
function callRepr(label: string, args: readonly unknown[]): string {
  const text = `${label}(${args.map((a) => previewValue(a, 40)).join(', ')})`;
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

export function logCallStart(
  log: VerboseLog,
  funcId: string,
  label: string,
  args: readonly unknown[],
  path: string,
): void {
  if (log.verbose >= 1) {
    log.write('_'.repeat(80));
    log.write(`[Memory] Calling ${funcId}...`);
    log.write(callRepr(label, args));
  }
  if (log.verbose > 10) log.write(`[Memory] Computing ${label}, persisting in ${path}`);
}

export function logCallEnd(log: VerboseLog, label: string, durationMs: number): void {
  if (log.verbose < 1) return;
  const msg = `${label} - ${formatSeconds(durationMs)}`;
  log.write(`${'_'.repeat(Math.max(0, 80 - msg.length))}${msg}`);
}

export function logCacheHit(log: VerboseLog, label: string, path: string, loadMs: number): void {
  if (log.verbose >= 5) log.write(`[Memory] ${formatSeconds(loadMs)}: Loading ${label} from ${path}`);
}

/** Level 2+: why a call missed (see `explain`). */
export function logMiss(log: VerboseLog, label: string, message: string): void {
  if (log.verbose >= 2) log.write(`[Memory] ${label}: miss: ${message}`);
}
