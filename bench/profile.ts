/**
 * Summarises V8 `.cpuprofile` files (from `node --cpu-prof`): self time per function, largest first.
 * Used by `npm run bench -- --profile W1:threads`; also runs alone:
 *   npx tsx bench/profile.ts <file-or-directory> [--top 20]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotSpot {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Self time outside "(idle)": what the thread actually spent on the CPU, as sampled. */
  busyMs: number;
  top: HotSpot[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  const path = url.replace(/^file:\/\//, '');
  const builtAt = path.indexOf('/joblib-ts-bench-build/out/');
  if (builtAt >= 0) return `(built) ${path.slice(builtAt + '/joblib-ts-bench-build/out/'.length)}`;
  const at = path.indexOf('/node_modules/');
  if (at >= 0) return path.slice(at + 1);
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}

/**
 * Self time per function in `file`; with `windowUs` (monotonic microseconds, as `process.hrtime`), only
 * the samples taken inside that window (the timed part of a benchmark cell).
 */
export function summarizeProfile(
  file: string,
  top = 15,
  windowUs?: readonly [number, number],
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let idleUs = 0;
  let inWindowUs = 0;
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    const node = byId.get(samples[i] as number);
    // A sample's time is the delta to the next one.
    const us = deltas[i + 1] ?? 0;
    if (!node) continue;
    if (windowUs && (at < windowUs[0] || at > windowUs[1])) continue;
    inWindowUs += us;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    if (name === '(idle)') idleUs += us;
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}:${columnNumber + 1}` : '';
    const key = `${name}@${where}`;
    const entry = selfUs.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    selfUs.set(key, entry);
  }
  const totalUs = windowUs ? inWindowUs : profile.endTime - profile.startTime;
  const busyUs = Math.max(1, totalUs - idleUs);
  const hot = [...selfUs.values()]
    .filter((e) => e.name !== '(idle)')
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, share: e.us / busyUs }));
  return { file, totalMs: totalUs / 1000, busyMs: busyUs / 1000, top: hot };
}

export function profileFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort()
    .map((f) => join(path, f));
}

export function formatSummary(summary: ProfileSummary): string {
  const lines = [
    `${basename(summary.file)}: ${summary.totalMs.toFixed(0)} ms sampled, ${summary.busyMs.toFixed(0)} ms not idle`,
    '| self ms | % of busy | function | where |',
    '| ---: | ---: | --- | --- |',
  ];
  for (const h of summary.top) {
    lines.push(`| ${h.selfMs.toFixed(1)} | ${(h.share * 100).toFixed(1)} | ${h.name} | ${h.where} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = process.argv[2];
  if (!target) {
    console.error('usage: npx tsx bench/profile.ts <file.cpuprofile | directory> [--top N]');
    process.exit(2);
  }
  const topAt = process.argv.indexOf('--top');
  const top = topAt >= 0 ? Number(process.argv[topAt + 1]) : 15;
  for (const file of profileFiles(target)) console.log(`${formatSummary(summarizeProfile(file, top))}\n`);
}
