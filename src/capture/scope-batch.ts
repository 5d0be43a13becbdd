/**
 * The values many functions see under given names, read from V8's `[[Scopes]]` in a few inspector calls
 * for the whole batch (`readScopes` in scopes.ts reads one function's, for sending it by value). The
 * bindings of a module's top level are read once per module and process: every function of the module
 * shares them. For the cache key of a function (`memory/deep-code.ts`), where speed counts.
 */
import type { AnyFunction } from '../delayed.ts';
import type { CodeLocation } from '../locate/inspector.ts';
import { post, type RemoteObject, scriptUrlOf } from '../locate/inspector.ts';
import { isBaselineGlobal } from './globals.ts';

interface Property {
  name: string;
  value?: RemoteObject;
}
interface InternalProperty {
  name: string;
  value?: RemoteObject & { value?: unknown };
}

/** What one function of the batch sees. */
export interface ScopeReading {
  /** Where its code is (generated code: for TypeScript, tsx's output). Undefined for native functions. */
  readonly location: CodeLocation | undefined;
  /** The values of the wanted names it found, in its scopes or on the global object. */
  readonly values: Map<string, unknown>;
}

const PROBE = Symbol.for('joblib-ts.capture.batch');
const GROUP = 'joblib-ts-capture-batch';

/** The names CommonJS's module wrapper binds: a closure of only these is not the module's top level. */
const WRAPPER_NAMES = new Set(['module', 'exports', 'require', '__filename', '__dirname']);

/** Top-level bindings of each module (by script id), read once. */
const moduleBindings = new Map<string, Map<string, unknown>>();

/**
 * One entry of a function's `[[Scopes]]` once handed to JavaScript: V8 gives each scope as its kind
 * ('Module', 'Closure (outer)', 'Script', 'Global'...) and an object holding its variables' values.
 */
interface ScopeEntry {
  readonly description: string;
  readonly object: Record<string, unknown>;
}

/** Batches at most this long are reached one `Runtime.evaluate` per function (else a list and its properties). */
const ONE_BY_ONE = 2;

/**
 * Reads, for each function, the values of the names `wanted(fn)` gives. Inspector calls per batch: one
 * per function to reach it (two in all for a longer batch) and one for its location and scope chain,
 * plus one that hands every scope chain over to JavaScript, where the variables are read directly
 * (asking the inspector for each scope's properties would serialise every variable, a function's whole
 * source included, for each module). The objects stay held until `releaseScopeReads()`: one call for a
 * whole walk instead of one per batch.
 */
export function readScopesOfMany(
  fns: readonly AnyFunction[],
  wanted: (fn: AnyFunction, location: CodeLocation | undefined) => readonly string[],
): ScopeReading[] {
  if (fns.length === 0) return [];
  const holder = globalThis as unknown as Record<symbol, unknown>;
  // The functions, then (appended by the inspector) the scope chains asked for.
  const probe: unknown[] = [...fns];
  holder[PROBE] = probe;
  held = true;
  try {
    const expression = `globalThis[Symbol.for(${JSON.stringify(PROBE.description)})]`;
    const evaluate = (expr: string) =>
      post<{ result: RemoteObject }>('Runtime.evaluate', { expression: expr, objectGroup: GROUP }).result;
    let ids: (string | undefined)[];
    if (fns.length <= ONE_BY_ONE) ids = fns.map((_, i) => evaluate(`${expression}[${i}]`).objectId);
    else {
      const elements = post<{ result: Property[] }>('Runtime.getProperties', {
        objectId: evaluate(expression).objectId,
        ownProperties: true,
      }).result;
      ids = fns.map((_, i) => elements.find((e) => e.name === String(i))?.value?.objectId);
    }
    const locations: (CodeLocation | undefined)[] = [];
    /** The function's index in `fns` for each scope chain handed over, in order. */
    const chainOf: number[] = [];
    const chainIds: string[] = [];
    fns.forEach((_, i) => {
      const objectId = ids[i];
      const internal = objectId
        ? (post<{ internalProperties?: InternalProperty[] }>('Runtime.getProperties', {
            objectId,
            ownProperties: true,
          }).internalProperties ?? [])
        : [];
      const raw = internal.find((p) => p.name === '[[FunctionLocation]]')?.value?.value as
        | { scriptId: string; lineNumber: number; columnNumber: number }
        | undefined;
      const url = raw ? scriptUrlOf(raw.scriptId) : undefined;
      locations.push(
        raw && url !== undefined
          ? { scriptId: raw.scriptId, url, line: raw.lineNumber, column: raw.columnNumber }
          : undefined,
      );
      const scopesId = internal.find((p) => p.name === '[[Scopes]]')?.value?.objectId;
      if (scopesId !== undefined && raw !== undefined) {
        chainOf[i] = chainIds.length;
        chainIds.push(scopesId);
      }
    });
    const target = ids.find((id) => id !== undefined);
    if (chainIds.length > 0 && target !== undefined)
      post('Runtime.callFunctionOn', {
        objectId: target,
        functionDeclaration: `function (...chains) { ${expression}.push(...chains); }`,
        arguments: chainIds.map((objectId) => ({ objectId })),
        objectGroup: GROUP,
      });
    return fns.map((fn, i) => {
      const location = locations[i];
      const values = new Map<string, unknown>();
      const at = chainOf[i];
      const want = new Set(wanted(fn, location));
      if (location === undefined || at === undefined) return { location, values };
      const chain = probe[fns.length + at] as ArrayLike<ScopeEntry>;
      readChain(chain, location.scriptId, want, values);
      if (fn instanceof Function) {
        const root = globalThis as unknown as Record<string, unknown>;
        for (const name of want)
          if (Object.hasOwn(root, name) && !isBaselineGlobal(name)) values.set(name, root[name]);
      }
      return { location, values };
    });
  } finally {
    delete holder[PROBE];
  }
}

/** Whether objects of `readScopesOfMany` are held by the inspector. */
let held = false;

/** Lets the inspector drop the objects the reads since the last call hold (one call per walk). */
export function releaseScopeReads(): void {
  if (!held) return;
  held = false;
  post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
}

/**
 * Finds the wanted names in a scope chain, innermost first, up to the global scope (`want` keeps the
 * names not found). The module's top level is read whole, once per module.
 */
function readChain(
  chain: ArrayLike<ScopeEntry>,
  scriptId: string,
  want: Set<string>,
  values: Map<string, unknown>,
): void {
  const scopes = Array.from(chain);
  // The module's top level: ESM's Module scope, or CommonJS's wrapper closure (the last closure, or the
  // one before it when the last holds only the wrapper's own names, as under tsx).
  let top = scopes.findIndex((s) => s.description === 'Module');
  if (top === -1) {
    const firstOuter = scopes.findIndex((s) => s.description === 'Script' || s.description === 'Global');
    const end = firstOuter === -1 ? scopes.length : firstOuter;
    const isClosure = (k: number) => k >= 0 && scopes[k]?.description.startsWith('Closure') === true;
    top = isClosure(end - 1) ? end - 1 : -1;
    if (top > 0 && isClosure(top - 1) && !moduleBindings.has(scriptId)) {
      const names = Object.keys(scopes[top]?.object ?? {});
      if (names.every((n) => WRAPPER_NAMES.has(n))) top -= 1;
    }
  }
  // Read whole even when no name is wanted from it: the module's other functions need no inspector call.
  const topScope = scopes[top];
  if (topScope !== undefined && !moduleBindings.has(scriptId))
    moduleBindings.set(scriptId, new Map(Object.entries(topScope.object)));
  for (const [index, scope] of scopes.entries()) {
    if (want.size === 0 || scope.description === 'Global') break;
    const bindings = index === top ? moduleBindings.get(scriptId) : undefined;
    for (const name of [...want]) {
      const found = bindings ? bindings.has(name) : Object.hasOwn(scope.object, name);
      if (!found) continue;
      values.set(name, bindings ? bindings.get(name) : scope.object[name]);
      want.delete(name);
    }
  }
}

/** The top-level bindings of a module (by script id) once a function of it has been read, else undefined. */
export function topLevelBindings(scriptId: string): ReadonlyMap<string, unknown> | undefined {
  return moduleBindings.get(scriptId);
}
