/**
 * Decides how a worker reaches a function: by reference (which module to import and which export to
 * call) when a worker can import it, else by value (see `capture/`). Functions of the program's entry
 * file always travel by value, so that a worker never imports the entry file.
 */
import { builtinModules, findSourceMap } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isBaselineGlobal } from '../capture/globals.ts';
import type { AnyFunction } from '../delayed.ts';
import { UnreachableFunctionError } from '../errors.ts';
import { isEntryFileUrl } from '../main-guard.ts';
import type { FunctionRef } from '../wire/function-ref.ts';
import { type CodeLocation, inspectFunction, loadedFileUrls, scriptSource } from './inspector.ts';
import { sourceHash } from './source-hash.ts';

export type { FunctionRef } from '../wire/function-ref.ts';

export interface LocatedFunction {
  readonly ref: FunctionRef;
  /** The name users know the function by: `convolveRandom`, `Math.pow`, `default`. */
  readonly name: string;
  /**
   * The module's namespace as the caller loaded it (to rebuild error classes it exports); for a
   * function sent by value, the functions and classes it captured. Never sent.
   */
  readonly namespace?: Record<string, unknown>;
  /** The function (class, module) itself, on the caller's side: to rebuild instances of it. Never sent. */
  readonly value?: unknown;
  /** Definitions a worker needs before this one (what a function sent by value captured). */
  readonly deps?: readonly LocatedFunction[];
}

const located = new WeakMap<AnyFunction, LocatedFunction>();
/** Functions already found to travel by value (the search for an export is not repeated for them). */
const byValue = new WeakSet<AnyFunction>();

/** Returns the cached location of `fn`, if it has been located before (the dispatcher's fast path). */
export function cachedLocation(fn: AnyFunction): LocatedFunction | undefined {
  return located.get(fn);
}

/**
 * Locates `fn` once and caches the answer. Throws `UnreachableFunctionError` for closures,
 * non-exported functions, class methods, bound functions and code made by `eval`/`new Function`.
 */
export async function locateFunction(fn: AnyFunction): Promise<LocatedFunction> {
  return (await locateByReference(fn)) ?? refuse(fn);
}

/**
 * The function by reference when a worker can import it (cached); undefined when it must travel by
 * value: defined in the entry file, a REPL, `node -e`, a `vm` context or `eval`, or not exported.
 * Throws `UnreachableFunctionError` for what cannot travel either way (bound and unknown native functions).
 */
export async function locateByReference(fn: AnyFunction): Promise<LocatedFunction | undefined> {
  const hit = located.get(fn);
  if (hit) return hit;
  if (byValue.has(fn)) return undefined;
  const found = await find(fn);
  if (found) {
    const result = { ...found, value: fn };
    located.set(fn, result);
    return result;
  }
  const { location, bound } = inspectFunction(fn);
  if (bound || !location) refuse(fn);
  byValue.add(fn);
  return undefined;
}

async function find(fn: AnyFunction): Promise<LocatedFunction | undefined> {
  const global = findInGlobals(fn);
  // Only globals a worker has too: a REPL's or a script's own functions are globals of the caller alone.
  if (global && isBaselineGlobal(global[0] as string) && (global[0] !== 'global' || global.length === 1))
    return { ref: { kind: 'global', path: global }, name: global.join('.') };
  const { location } = inspectFunction(fn);
  if (!location || location.url.startsWith('node:')) return findInBuiltinModules(fn);
  // eval, REPL, `node -e`, vm contexts: no module to import. The entry file: importing it would run the program.
  if (!location.url.startsWith('file:') && !location.url.startsWith('/')) return undefined;
  const url = location.url.startsWith('/') ? pathToFileURL(location.url).href : location.url;
  if (isEntryFileUrl(url)) return undefined;
  const namespace = await loadedNamespace(url);
  if (namespace === 'evaluating') return findInEvaluatingModule(fn, url, location);
  const path = namespace ? findExport(namespace, fn) : undefined;
  if (namespace && path)
    return { ref: { kind: 'module', url, path }, name: displayName(path, fn), namespace };
  return findInOtherModules(fn, url);
}

/**
 * A function made by a factory in one module and exported by another (`export const cachedSquare =
 * memory.cache(square)`) is defined where the factory is: search the exports of every loaded module.
 */
async function findInOtherModules(
  fn: AnyFunction,
  definingUrl: string,
): Promise<LocatedFunction | undefined> {
  for (const url of loadedFileUrls()) {
    if (url === definingUrl || url.includes('/node_modules/')) continue;
    const namespace = await loadedNamespace(url);
    if (!namespace || namespace === 'evaluating') continue;
    const path = findExport(namespace, fn);
    if (path) return { ref: { kind: 'module', url, path }, name: displayName(path, fn), namespace };
  }
  return undefined;
}

const EVALUATING_WAIT_MS = 50;

/**
 * The namespace of an already loaded module. A module still running its top-level code (the entry
 * file awaiting its own Parallel call) cannot be imported without deadlocking: report it instead.
 */
async function loadedNamespace(url: string): Promise<Record<string, unknown> | 'evaluating' | undefined> {
  const loading = import(url) as Promise<Record<string, unknown>>;
  loading.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const evaluating = new Promise<'evaluating'>((resolve) => {
    timer = setTimeout(() => resolve('evaluating'), EVALUATING_WAIT_MS);
  });
  try {
    return await Promise.race([loading, evaluating]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * For a module whose exports cannot be read yet: the function is taken to be the export of its own
 * name when the module's code exports that name; the worker then checks the source text matches.
 */
function findInEvaluatingModule(
  fn: AnyFunction,
  url: string,
  location: CodeLocation,
): LocatedFunction | undefined {
  const name = fn.name;
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) return undefined;
  const source = scriptSource(location.scriptId);
  if (!source || !exportsName(source, name)) return undefined;
  return { ref: { kind: 'module', url, path: [name], sourceHash: sourceHash(fn) }, name };
}

/** Whether module code (ESM, or the CommonJS that tsx/esbuild or tsc emit) exports `name`. */
export function exportsName(source: string, name: string): boolean {
  const n = name.replace(/\$/g, '\\$');
  return [
    new RegExp(`export\\s+(?:async\\s+)?function\\s*\\*?\\s*${n}\\s*[(<]`),
    new RegExp(`export\\s+(?:const|let|var)\\s+${n}\\b`),
    new RegExp(`export\\s*\\{[^}]*\\b${n}\\b[^}]*\\}`),
    new RegExp(`[{,]\\s*${n}\\s*:\\s*\\(\\)\\s*=>\\s*${n}\\b`),
    new RegExp(`exports\\.${n}\\s*=`),
  ].some((pattern) => pattern.test(source));
}

/** Searches a module's exports, and one level into exported plain objects (CommonJS `module.exports` included). */
function findExport(namespace: Record<string, unknown>, fn: AnyFunction): string[] | undefined {
  const keys = Object.keys(namespace);
  for (const key of keys) if (namespace[key] === fn) return [key];
  for (const key of keys) {
    const value = namespace[key];
    if (!isPlainContainer(value)) continue;
    for (const inner of Object.keys(value)) {
      if ((value as Record<string, unknown>)[inner] === fn) return [key, inner];
    }
  }
  return undefined;
}

function isPlainContainer(value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function displayName(path: readonly string[], fn: AnyFunction): string {
  const last = path[path.length - 1];
  if (last === 'default' && fn.name) return fn.name;
  return path[0] === 'default' && path.length > 1 ? path.slice(1).join('.') : path.join('.');
}

let globalIndex: Map<unknown, string[]> | undefined;

/** Functions on `globalThis` and one level below it (`Math.pow`, `JSON.stringify`, `Number.isInteger`...). */
function findInGlobals(fn: AnyFunction): string[] | undefined {
  if (!globalIndex) {
    globalIndex = new Map();
    const root = globalThis as unknown as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(globalThis)) {
      if (name === 'globalThis' || name.startsWith('_')) continue;
      // Only plain data properties: reading a lazy getter (fetch, WebSocket...) would load its module.
      const own = Object.getOwnPropertyDescriptor(root, name);
      if (!own || !('value' in own)) continue;
      const value: unknown = own.value;
      if (typeof value === 'function' && !globalIndex.has(value)) globalIndex.set(value, [name]);
      if (value === null || (typeof value !== 'object' && typeof value !== 'function')) continue;
      for (const member of Object.getOwnPropertyNames(value)) {
        const descriptor = Object.getOwnPropertyDescriptor(value, member);
        if (descriptor && typeof descriptor.value === 'function' && !globalIndex.has(descriptor.value)) {
          globalIndex.set(descriptor.value, [name, member]);
        }
      }
    }
  }
  return globalIndex.get(fn);
}

/** Node's own functions (`node:fs`'s `readFileSync`...) are defined in internal modules: search the public ones. */
async function findInBuiltinModules(fn: AnyFunction): Promise<LocatedFunction | undefined> {
  for (const name of builtinModules) {
    // Importing these prints a deprecation or experimental warning (and they export nothing to find).
    if (name.startsWith('_') || name.includes('/internal') || /^(sys|wasi|punycode)$/.test(name)) continue;
    const url = `node:${name}`;
    let namespace: Record<string, unknown>;
    try {
      namespace = (await import(url)) as Record<string, unknown>;
    } catch {
      continue;
    }
    const path = findExport(namespace, fn);
    if (path) return { ref: { kind: 'module', url, path }, name: `${name}.${path.join('.')}` };
  }
  return undefined;
}

/** `file:line:column` of a function, in the original source when a source map is known (TypeScript under tsx). */
export function describeLocation(location: CodeLocation): string {
  const file = location.url.startsWith('file:') ? fileURLToPath(location.url) : location.url;
  const map = findSourceMap(file) ?? findSourceMap(location.url);
  const entry = map?.findEntry(location.line, location.column);
  if (entry && 'originalLine' in entry && typeof entry.originalLine === 'number') {
    const source = entry.originalSource.startsWith('file:')
      ? fileURLToPath(entry.originalSource)
      : entry.originalSource;
    return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  }
  return `${file}:${location.line + 1}:${location.column + 1}`;
}

function refuse(fn: AnyFunction): never {
  const name = fn.name || '(anonymous function)';
  const { location, bound } = inspectFunction(fn);
  const where = location?.url ? describeLocation(location) : undefined;
  let why: string;
  if (bound) {
    why = `\`${name}\` is a bound function. Workers call exported functions by name, so bound values cannot travel with it.`;
  } else if (location && !location.url) {
    why = `\`${name}\` was made by eval or new Function, so no module exports it.`;
  } else if (where) {
    why = `\`${name}\` (defined at ${where}) is not exported at the top level of its module, so a worker cannot import it. Closures, functions that are not exported, and class methods cannot be reached this way.`;
  } else {
    why = `\`${name}\` is a native function that is not reachable from globalThis or a node: module.`;
  }
  const fix = bound
    ? 'Fix: pass the bound values as arguments, e.g. delayed(fn)(boundValue, ...args).'
    : `Fix: define it at the top level of a module and export it, e.g. \`export function ${fn.name || 'myTask'}(...) { ... }\`, then pass values it needs as arguments.`;
  throw new UnreachableFunctionError(`Cannot run ${name} in a worker: ${why}\n${fix}`, name, where);
}
