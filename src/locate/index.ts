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
  if (!location || location.url.startsWith('node:')) return findInBuiltinModules(fn, location?.url);
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
 * memory.cache(square)`) is defined where the factory is: search the exports of every loaded module,
 * the user's own first, then packages' (a package may build its API in one file and export it from another).
 */
async function findInOtherModules(
  fn: AnyFunction,
  definingUrl: string,
): Promise<LocatedFunction | undefined> {
  const urls = loadedFileUrls().filter((url) => url !== definingUrl && !isEntryFileUrl(url));
  const inPackage = (url: string) => url.includes('/node_modules/');
  for (const url of [...urls.filter((u) => !inPackage(u)), ...urls.filter(inPackage)]) {
    const namespace = await loadedNamespace(url);
    if (!namespace || namespace === 'evaluating') continue;
    const path = findExport(namespace, fn);
    if (path) return { ref: { kind: 'module', url, path }, name: displayName(path, fn), namespace };
  }
  return undefined;
}

/**
 * How long `import()` of a loaded module may take before the module is taken to be still running its
 * top-level code. Under tsx the import goes through the loader's hooks thread: on a loaded machine that
 * took over 50 ms (the bound until 2026-12-06), and a module taken for evaluating is searched by name
 * only, which misses factory-made exports. The entry file, the usual evaluating module, is never
 * imported, so the wait is paid only for another module awaiting at its top level, once per function.
 */
const EVALUATING_WAIT_MS = 1000;

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

/** How deep `findExport` looks below a module's namespace: `default.sum`, `default.stats.sum`. */
const MAX_EXPORT_DEPTH = 3;

/** Own keys of a function that are not members users put on it. */
const FUNCTION_OWN_KEYS = new Set(['length', 'name', 'prototype', 'caller', 'arguments']);

/**
 * Searches a module's exports, breadth first (so the shortest path wins), down into exported plain
 * objects, namespace objects and functions that carry functions (`import _ from 'lodash'` gives a
 * function whose properties are `_.sum`...; a class's static methods). `dataOnly` never calls a getter
 * (a built-in module's getters may load other modules or warn).
 */
function findExport(
  namespace: Record<string, unknown>,
  fn: AnyFunction,
  dataOnly = false,
): string[] | undefined {
  const seen = new Set<unknown>([namespace]);
  let level: [object, string[]][] = [[namespace, []]];
  for (let depth = 0; depth < MAX_EXPORT_DEPTH && level.length > 0; depth++) {
    const next: [object, string[]][] = [];
    for (const [container, path] of level) {
      const isFunction = typeof container === 'function';
      let keys: string[];
      try {
        keys = isFunction
          ? Object.getOwnPropertyNames(container).filter((key) => !FUNCTION_OWN_KEYS.has(key))
          : Object.keys(container);
      } catch {
        continue; // a Proxy that refuses to list its keys
      }
      for (const key of keys) {
        const value = readMember(container, key, dataOnly || isFunction);
        if (value === fn) return [...path, key];
        if (isContainer(value) && !seen.has(value)) {
          seen.add(value);
          next.push([value, [...path, key]]);
        }
      }
    }
    level = next;
  }
  return undefined;
}

/** `container[key]`, or undefined when it throws or (with `dataOnly`) is a getter. */
function readMember(container: object, key: string, dataOnly: boolean): unknown {
  try {
    if (!dataOnly) return (container as Record<string, unknown>)[key];
    const descriptor = Object.getOwnPropertyDescriptor(container, key);
    return descriptor && 'value' in descriptor ? descriptor.value : undefined;
  } catch {
    return undefined;
  }
}

function isContainer(value: unknown): value is object {
  if (typeof value === 'function') return true;
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

/**
 * Node's own functions (`node:fs`'s `readFileSync`...) are defined in internal modules or in C++: search
 * the public built-in modules this program has already loaded (a function of a module nobody loaded
 * cannot be in hand). Importing any other one could print a warning the user did not cause (`sys` is
 * deprecated, `wasi` experimental) or cost a module load; `definedIn` (`node:path`) is tried first.
 */
async function findInBuiltinModules(
  fn: AnyFunction,
  definedIn?: string,
): Promise<LocatedFunction | undefined> {
  const loaded = loadedBuiltinModules();
  const first = definedIn?.startsWith('node:') ? definedIn.slice('node:'.length) : undefined;
  const names = first && loaded.includes(first) ? [first, ...loaded.filter((n) => n !== first)] : loaded;
  for (const name of names) {
    const url = `node:${name}`;
    let namespace: Record<string, unknown>;
    try {
      namespace = (await import(url)) as Record<string, unknown>;
    } catch {
      continue;
    }
    const path = findExport(namespace, fn, true);
    if (path) return { ref: { kind: 'module', url, path }, name: `${name}.${path.join('.')}` };
  }
  return undefined;
}

/** Public built-in modules loaded so far in this process, from Node's `process.moduleLoadList`. */
function loadedBuiltinModules(): string[] {
  const list = (process as { moduleLoadList?: unknown }).moduleLoadList;
  const publicName = (name: string) =>
    builtinModules.includes(name) && !name.startsWith('_') && !name.includes('internal');
  if (!Array.isArray(list)) return builtinModules.filter((n) => publicName(n) && !WARNS_WHEN_LOADED.has(n));
  const names = new Set<string>();
  for (const entry of list) {
    if (typeof entry !== 'string' || !entry.startsWith('NativeModule ')) continue;
    const name = entry.slice('NativeModule '.length);
    if (publicName(name)) names.add(name);
  }
  return [...names];
}

/** Used only where Node has no `moduleLoadList`: built-ins whose first load prints a warning. */
const WARNS_WHEN_LOADED = new Set(['sys', 'wasi', 'punycode', 'sqlite', 'sea', 'test', 'test/reporters']);

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
    : notYourCode(location?.url) !== undefined || !where
      ? wrapperFix(fn.name, notYourCode(location?.url) ?? "Node's own code")
      : `Fix: define it at the top level of a module and export it, e.g. \`export function ${fn.name || 'myTask'}(...) { ... }\`, then pass values it needs as arguments.`;
  throw new UnreachableFunctionError(`Cannot run ${name} in a worker: ${why}\n${fix}`, name, where);
}

/** For a function in a package or in Node itself, the code the user cannot edit: `the package "lodash"`. */
function notYourCode(url: string | undefined): string | undefined {
  if (!url) return undefined;
  if (url.startsWith('node:')) return "Node's own code";
  const marker = '/node_modules/';
  const at = url.lastIndexOf(marker);
  if (at < 0) return undefined;
  const parts = url.slice(at + marker.length).split('/');
  const pkg = parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? '');
  return `the package "${decodeURIComponent(pkg)}"`;
}

/** The fix for a function whose defining code is not the user's: a wrapper in their own module. */
function wrapperFix(fnName: string, owner: string): string {
  const name = /^[A-Za-z_$][\w$]*$/.test(fnName) ? fnName : 'fn';
  return `Fix: it is ${owner}, not yours to change. In one of your own modules, export a wrapper at the top level and pass that to delayed(): \`export function ${name}Task(...args) { return ${name}(...args); }\` (calling ${name} the way your code reaches it, e.g. pkg.${name}), then delayed(${name}Task)(...).`;
}
