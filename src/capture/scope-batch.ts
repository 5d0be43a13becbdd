/**
 * The values many functions see under given names, read from V8's `[[Scopes]]` in a few inspector calls
 * for the whole batch (`readScopes` in scopes.ts reads one function's, for sending it by value). The
 * bindings of a module's top level are read once per module and process: every function of the module
 * shares them. For the cache key of a function (`memory/deep-code.ts`), where speed counts.
 */
import type { AnyFunction } from '../delayed.ts';
import type { CodeLocation } from '../locate/inspector.ts';
import { post, type RemoteObject, scriptUrlOf, toCallArgument } from '../locate/inspector.ts';
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
const HOLDER = Symbol.for('joblib-ts.capture.batch-holder');
const GROUP = 'joblib-ts-capture-batch';

/** The names CommonJS's module wrapper binds: a closure of only these is not the module's top level. */
const WRAPPER_NAMES = new Set(['module', 'exports', 'require', '__filename', '__dirname']);

/** Top-level bindings of each module (by script id), read once. */
const moduleBindings = new Map<string, Map<string, unknown>>();

/** Reads, for each function, the values of the names `wanted(fn)` gives. */
export function readScopesOfMany(
  fns: readonly AnyFunction[],
  wanted: (fn: AnyFunction, location: CodeLocation | undefined) => readonly string[],
): ScopeReading[] {
  if (fns.length === 0) return [];
  const holder = globalThis as unknown as Record<symbol, unknown>;
  holder[PROBE] = fns;
  const handed: unknown[] = [];
  holder[HOLDER] = handed;
  try {
    const expr = (s: symbol) => `globalThis[Symbol.for(${JSON.stringify(s.description)})]`;
    const list = post<{ result: RemoteObject }>('Runtime.evaluate', {
      expression: expr(PROBE),
      objectGroup: GROUP,
    });
    const sink = post<{ result: RemoteObject }>('Runtime.evaluate', {
      expression: expr(HOLDER),
      objectGroup: GROUP,
    });
    const elements = post<{ result: Property[] }>('Runtime.getProperties', {
      objectId: list.result.objectId,
      ownProperties: true,
    }).result;
    // Remote values to hand over in one call at the end, and where each goes.
    const remote: RemoteObject[] = [];
    const targets: { into: Map<string, unknown>; name: string }[] = [];
    const readings: ScopeReading[] = [];
    const newModules: [string, Map<string, unknown>][] = [];
    fns.forEach((fn, i) => {
      const values = new Map<string, unknown>();
      const objectId = elements.find((e) => e.name === String(i))?.value?.objectId;
      if (!objectId) {
        readings.push({ location: undefined, values });
        return;
      }
      const internal =
        post<{ internalProperties?: InternalProperty[] }>('Runtime.getProperties', {
          objectId,
          ownProperties: true,
        }).internalProperties ?? [];
      const raw = internal.find((p) => p.name === '[[FunctionLocation]]')?.value?.value as
        | { scriptId: string; lineNumber: number; columnNumber: number }
        | undefined;
      const url = raw ? scriptUrlOf(raw.scriptId) : undefined;
      const location =
        raw && url !== undefined
          ? { scriptId: raw.scriptId, url, line: raw.lineNumber, column: raw.columnNumber }
          : undefined;
      readings.push({ location, values });
      const want = new Set(wanted(fn, location));
      const scopesId = internal.find((p) => p.name === '[[Scopes]]')?.value?.objectId;
      if (want.size === 0 || !scopesId || !raw) return;
      const scopes = post<{ result: Property[] }>('Runtime.getProperties', {
        objectId: scopesId,
        ownProperties: true,
      })
        .result.map((p) => p.value)
        .filter((v): v is RemoteObject => v?.objectId !== undefined);
      // The module's top level: ESM's Module scope, or CommonJS's wrapper closure (the last closure, or
      // the one before it when the last holds only the wrapper's own names, as under tsx).
      let top = scopes.findIndex((s) => s.description === 'Module');
      if (top === -1) {
        const firstOuter = scopes.findIndex((s) => s.description === 'Script' || s.description === 'Global');
        const end = firstOuter === -1 ? scopes.length : firstOuter;
        const isClosure = (i: number) => i >= 0 && scopes[i]?.description?.startsWith('Closure') === true;
        top = isClosure(end - 1) ? end - 1 : -1;
        if (top > 0 && isClosure(top - 1) && !moduleBindings.has(raw.scriptId)) {
          const names = post<{ result: Property[] }>('Runtime.getProperties', {
            objectId: scopes[top]?.objectId,
            ownProperties: true,
          }).result.map((p) => p.name);
          if (names.every((n) => WRAPPER_NAMES.has(n))) top -= 1;
        }
      }
      for (const [index, scope] of scopes.entries()) {
        if (want.size === 0) break;
        if (scope.description === 'Global') break;
        const known = index === top ? moduleBindings.get(raw.scriptId) : undefined;
        if (known) {
          for (const name of [...want]) {
            if (!known.has(name)) continue;
            values.set(name, known.get(name));
            want.delete(name);
          }
          continue;
        }
        const bindings = post<{ result: Property[] }>('Runtime.getProperties', {
          objectId: scope.objectId,
          ownProperties: true,
        }).result;
        const all = index === top ? new Map<string, unknown>() : undefined;
        if (all) newModules.push([raw.scriptId, all]);
        for (const binding of bindings) {
          if (!binding.value) continue;
          if (all) {
            remote.push(binding.value);
            targets.push({ into: all, name: binding.name });
          }
          if (!want.has(binding.name)) continue;
          remote.push(binding.value);
          targets.push({ into: values, name: binding.name });
          want.delete(binding.name);
        }
      }
      if (fn instanceof Function) {
        const root = globalThis as unknown as Record<string, unknown>;
        for (const name of want)
          if (!isBaselineGlobal(name) && Object.hasOwn(root, name)) values.set(name, root[name]);
      }
    });
    if (remote.length > 0) {
      post('Runtime.callFunctionOn', {
        objectId: sink.result.objectId,
        functionDeclaration: 'function (...values) { this.push(...values); }',
        arguments: remote.map(toCallArgument),
        objectGroup: GROUP,
      });
      targets.forEach((t, i) => {
        t.into.set(t.name, handed[i]);
      });
    }
    for (const [scriptId, bindings] of newModules) moduleBindings.set(scriptId, bindings);
    return readings;
  } finally {
    delete holder[PROBE];
    delete holder[HOLDER];
    post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
  }
}

/** The top-level bindings of a module (by script id) once a function of it has been read, else undefined. */
export function topLevelBindings(scriptId: string): ReadonlyMap<string, unknown> | undefined {
  return moduleBindings.get(scriptId);
}
