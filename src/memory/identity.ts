/**
 * Who a cached function is (its cache folder) and which version of its code the entries belong to.
 */
import type { AnyFunction } from '../delayed.ts';
import { hashBytes } from '../hash.ts';

export interface FunctionIdentity {
  /** Stable identifier: the explicit `name`, else the function's name. */
  id: string;
  /** Folder name under the cache location (sanitized `id`, with a short hash when sanitizing changed it). */
  dirName: string;
  /** Short name for messages. */
  displayName: string;
  /** The code version entries are stored under: the explicit `version`, else a hash of the source text. */
  codeVersion: string;
  /** The function's source text (`fn.toString()`). */
  source: string;
  /** False when the function has no name and no explicit `name` was given (collisions are likely). */
  named: boolean;
  /** True when `version` was given: it is the code version, whatever the code. */
  versioned: boolean;
}

const UNSAFE = /[^A-Za-z0-9._@-]/g;

export function dirNameFor(id: string): string {
  let safe = id.replace(UNSAFE, '_');
  if (safe.startsWith('.')) safe = `_${safe.slice(1)}`;
  if (safe.length > 100) safe = safe.slice(safe.length - 100);
  if (safe === id) return safe;
  return `${safe}-${hashBytes(id).slice(0, 8)}`;
}

/**
 * Identity of `fn` for the cache. `options.name` overrides the name (a stable namespace such as
 * `'featurize@v2'`); `options.version` replaces the source hash (entries then survive source edits until
 * the version string changes).
 */
export function functionIdentity(
  fn: AnyFunction,
  options: { name?: string | undefined; version?: string | undefined } = {},
): FunctionIdentity {
  const source = Function.prototype.toString.call(fn);
  const displayName = options.name ?? (fn.name || 'anonymous');
  const id = options.name ?? (fn.name || 'anonymous');
  const codeVersion =
    options.version !== undefined ? `v-${dirNameFor(options.version)}` : hashBytes(source).slice(0, 16);
  return {
    id,
    dirName: dirNameFor(id),
    displayName,
    codeVersion,
    source,
    named: options.name !== undefined || fn.name !== '',
    versioned: options.version !== undefined,
  };
}

export interface ParsedParams {
  /** One entry per declared parameter: its name, or null for a destructuring pattern. */
  names: (string | null)[];
  /** True when the last parameter is a rest parameter (`...xs`). */
  rest: boolean;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** Index just past a string, template or comment starting at `i`, or -1 when `i` starts none of them. */
function skipLiteral(src: string, i: number): number {
  const c = src[i];
  if (c === '"' || c === "'" || c === '`') {
    let j = i + 1;
    while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
    return j + 1;
  }
  if (c === '/' && src[i + 1] === '/') {
    const j = src.indexOf('\n', i);
    return j === -1 ? src.length : j + 1;
  }
  if (c === '/' && src[i + 1] === '*') {
    const j = src.indexOf('*/', i + 2);
    return j === -1 ? src.length : j + 2;
  }
  return -1;
}

/** Splits `src[start..end)` at top-level occurrences of `sep`. */
function splitTop(src: string, start: number, end: number, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let from = start;
  for (let i = start; i < end; ) {
    const skip = skipLiteral(src, i);
    if (skip !== -1) {
      i = skip;
      continue;
    }
    const c = src[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === sep && depth === 0) {
      out.push(src.slice(from, i));
      from = i + 1;
    }
    i++;
  }
  out.push(src.slice(from, end));
  return out;
}

function stripComments(s: string): string {
  return s.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
}

/**
 * Parameter names read from a function's source text. Handles `function` declarations and expressions,
 * arrows (with or without parentheses), `async`, generators and method shorthand; plain identifiers,
 * defaults and a rest parameter. Destructured parameters get `null` (ignore them by position). Returns
 * undefined when the source cannot be read (native or bound functions, classes).
 */
export function parseParams(source: string): ParsedParams | undefined {
  const src = source.trimStart();
  let i = 0;
  const head = stripComments(src.slice(0, 200));
  const arrowSingle = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(head);
  if (arrowSingle?.[1] !== undefined && arrowSingle[1] !== 'async')
    return { names: [arrowSingle[1]], rest: false };
  if (/^class\b/.test(head) || src.endsWith('{ [native code] }')) return undefined;
  // Find the opening parenthesis of the parameter list (skipping `async`, `function`, `*`, a name).
  while (i < src.length) {
    const skip = skipLiteral(src, i);
    if (skip !== -1) {
      i = skip;
      continue;
    }
    const c = src[i];
    if (c === '(') break;
    if (c === '{' || c === '=') return undefined;
    i++;
  }
  if (i >= src.length) return undefined;
  const open = i;
  let depth = 0;
  let close = -1;
  for (let j = open; j < src.length; ) {
    const skip = skipLiteral(src, j);
    if (skip !== -1) {
      j = skip;
      continue;
    }
    const c = src[j];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) {
        close = j;
        break;
      }
    }
    j++;
  }
  if (close === -1) return undefined;
  const parts = splitTop(src, open + 1, close, ',')
    .map((p) => stripComments(p).trim())
    .filter((p) => p.length > 0);
  const names: (string | null)[] = [];
  let rest = false;
  for (const [k, part] of parts.entries()) {
    let p = part;
    if (p.startsWith('...')) {
      if (k !== parts.length - 1) return undefined;
      rest = true;
      p = p.slice(3).trim();
    }
    const target = (splitTop(p, 0, p.length, '=')[0] ?? '').trim();
    names.push(IDENT.test(target) ? target : null);
  }
  return { names, rest };
}
