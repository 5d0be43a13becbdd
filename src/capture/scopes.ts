/**
 * The values a function sees under given names, read from V8's `[[Scopes]]` through the in-thread
 * inspector session: closure, block, script and module scopes (a module's imports included), then the
 * global object of the function's own realm (a `vm` context's, for notebook kernels).
 */
import type { AnyFunction } from '../delayed.ts';
import { post, type RemoteObject, toCallArgument } from '../locate/inspector.ts';
import { isBaselineGlobal } from './globals.ts';

interface PropertyDescriptor {
  name: string;
  value?: RemoteObject;
}
interface InternalProperty {
  name: string;
  value?: RemoteObject;
}

const PROBE = Symbol.for('joblib-ts.capture.probe');
const HOLDER = Symbol.for('joblib-ts.capture.holder');
const GROUP = 'joblib-ts-capture';

/**
 * The values `fn` sees for `names`, innermost scope first. Names it does not find, or finds only as a
 * worker's own globals, are left out (the worker's globals answer them).
 */
export function readScopes(fn: AnyFunction, names: readonly string[]): Map<string, unknown> {
  const found = new Map<string, unknown>();
  if (names.length === 0) return found;
  const holder = globalThis as unknown as Record<symbol, unknown>;
  holder[PROBE] = fn;
  const values: unknown[] = [];
  holder[HOLDER] = values;
  try {
    const { result } = post<{ result: RemoteObject }>('Runtime.evaluate', {
      expression: `globalThis[Symbol.for(${JSON.stringify(PROBE.description)})]`,
      objectGroup: GROUP,
    });
    const { result: holderObject } = post<{ result: RemoteObject }>('Runtime.evaluate', {
      expression: `globalThis[Symbol.for(${JSON.stringify(HOLDER.description)})]`,
      objectGroup: GROUP,
    });
    const internal = post<{ internalProperties?: InternalProperty[] }>('Runtime.getProperties', {
      objectId: result.objectId,
      ownProperties: true,
    }).internalProperties;
    const scopesId = internal?.find((p) => p.name === '[[Scopes]]')?.value?.objectId;
    if (!scopesId) return found;
    const scopes = post<{ result: PropertyDescriptor[] }>('Runtime.getProperties', {
      objectId: scopesId,
      ownProperties: true,
    }).result;
    const wanted = new Set(names);
    const remote = new Map<string, RemoteObject>();
    let globalScope: RemoteObject | undefined;
    for (const scope of scopes) {
      const object = scope.value;
      if (!object?.objectId || wanted.size === 0) continue;
      if (object.description === 'Global') {
        globalScope = object;
        continue;
      }
      const bindings = post<{ result: PropertyDescriptor[] }>('Runtime.getProperties', {
        objectId: object.objectId,
        ownProperties: true,
      }).result;
      for (const binding of bindings) {
        if (!wanted.has(binding.name) || !binding.value) continue;
        remote.set(binding.name, binding.value);
        wanted.delete(binding.name);
      }
    }
    const globals = [...wanted].filter((name) => !isBaselineGlobal(name));
    if (globals.length > 0 && globalScope?.objectId) {
      if (fn instanceof Function) {
        // The function's realm is ours: read our global object directly (getters included: a REPL's modules).
        const root = globalThis as unknown as Record<string, unknown>;
        for (const name of globals) if (Object.hasOwn(root, name)) found.set(name, root[name]);
      } else {
        const bindings = post<{ result: PropertyDescriptor[] }>('Runtime.getProperties', {
          objectId: globalScope.objectId,
          ownProperties: true,
        }).result;
        for (const binding of bindings)
          if (globals.includes(binding.name) && binding.value) remote.set(binding.name, binding.value);
      }
    }
    if (remote.size === 0) return found;
    // One call hands every value over, objects as themselves (not copies), into `values`.
    const order = [...remote.keys()];
    post('Runtime.callFunctionOn', {
      objectId: holderObject.objectId,
      functionDeclaration: 'function (...values) { this.push(...values); }',
      arguments: order.map((name) => toCallArgument(remote.get(name) as RemoteObject)),
      objectGroup: GROUP,
    });
    order.forEach((name, i) => {
      found.set(name, values[i]);
    });
    return found;
  } finally {
    delete holder[PROBE];
    delete holder[HOLDER];
    post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
  }
}
