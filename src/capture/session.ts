/**
 * One run's view of the functions it sends: by reference where a worker can import them, else by value,
 * with the values of what they capture taken now (a snapshot, as cloudpickle's). Captured functions and
 * classes follow the same rule, recursively (recursion and mutual recursion included); imported
 * bindings and module namespaces go as references to their module; data goes by structured clone;
 * instances of classes that travel keep their class. What cannot travel is refused here, before any
 * task starts, naming the variable.
 */
import { types } from 'node:util';
import type { AnyFunction } from '../delayed.ts';
import { describeValue, UncapturableValueError, UnreachableFunctionError } from '../errors.ts';
import { cachedLocation, type LocatedFunction, locateByReference } from '../locate/index.ts';
import { inspectFunction } from '../locate/inspector.ts';
import type { FunctionRef } from '../wire/function-ref.ts';
import { containerKind, encodeTags, isClonableLeaf, needsTags, type TagHooks } from '../wire/tagged.ts';
import { type AnalyzedFunction, analyzeFunction, functionCode } from './code.ts';
import { functionId } from './function-ids.ts';
import { findModuleObject, isModuleNamespace } from './modules.ts';
import { readScopes } from './scopes.ts';

/** A value that cannot travel: where it is inside the captured variable, what it is, and what to do. */
class Refusal {
  constructor(
    readonly path: string,
    readonly type: string,
    readonly fix: string,
  ) {}
}

/** Objects that can never be copied to another thread or process, whatever holds them. */
function neverTravels(value: object): string | undefined {
  if (types.isProxy(value)) return 'pass the object the Proxy wraps, or build the Proxy inside the task';
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef)
    return 'use a Map or Set, or create it inside the task';
  if (types.isPromise(value)) return 'await it before run() and capture its result';
  if (types.isGeneratorObject(value)) return 'collect its values into an array first';
  if (typeof FinalizationRegistry !== 'undefined' && value instanceof FinalizationRegistry)
    return 'create it inside the task';
  return undefined;
}

/** Classes of Node itself (sockets, streams, event emitters, handles...): their instances hold native state. */
function isInternalClass(ctor: AnyFunction): boolean {
  const { location } = inspectFunction(ctor);
  return location === undefined || location.url.startsWith('node:');
}

function typeName(value: unknown): string {
  if (typeof value === 'symbol') return 'a symbol';
  if (value !== null && typeof value === 'object' && types.isProxy(value)) return 'a Proxy';
  return describeValue(value);
}

/** What to encode, found by walking a value: functions and modules, and instances with their class. */
interface Found {
  readonly refs: Map<object, LocatedFunction>;
  readonly instances: Map<object, LocatedFunction>;
}

export class CaptureSession {
  /** This run's functions sent by value, so that each is captured once and cycles close on themselves. */
  private readonly byValue = new Map<AnyFunction, LocatedFunction>();

  constructor(private readonly runId: number) {}

  /**
   * Functions that capture nothing, by source text: `inputs.map((i) => delayed((x) => x * 2)(i))` makes a
   * new arrow per task, and all of them are one definition (their code is all there is to them).
   */
  private readonly capturesNothing = new Map<string, LocatedFunction>();

  /** A task's function: by reference when a worker can import it, else by value with its captures as of now. */
  async locate(fn: AnyFunction): Promise<LocatedFunction> {
    return this.known(fn) ?? (await locateByReference(fn)) ?? (await this.capture(fn));
  }

  /** The answer without looking further, when this run has one already (synchronous: the per-task path). */
  known(fn: AnyFunction): LocatedFunction | undefined {
    return (
      cachedLocation(fn) ??
      this.byValue.get(fn) ??
      (this.capturesNothing.size > 0
        ? this.capturesNothing.get(Function.prototype.toString.call(fn))
        : undefined)
    );
  }

  /**
   * Arguments as they travel: instances of classes keep their class, functions go by reference or by
   * value. Undefined when nothing needs it (numbers, strings, plain data, typed arrays): the common case
   * costs one look at each argument.
   */
  async encodeArgs(
    args: readonly (readonly unknown[])[],
  ): Promise<{ args: unknown[]; deps: LocatedFunction[] } | undefined> {
    if (!args.some(hasObjectArgument)) return undefined;
    const found: Found = { refs: new Map(), instances: new Map() };
    await this.collect(args, found, false, 'argument', new Set());
    if (found.refs.size === 0 && found.instances.size === 0) return undefined;
    const deps = new Set<LocatedFunction>();
    const encoded = encodeTags(args, hooks(found, deps)) as unknown[];
    return { args: encoded, deps: [...deps] };
  }

  private async capture(fn: AnyFunction): Promise<LocatedFunction> {
    const hit = this.byValue.get(fn);
    if (hit) return hit;
    const analysis = analyzeFunction(fn);
    const scope = readScopes(fn, analysis.facts.free);
    const names = [...scope.keys()];
    const captures: unknown[] = [];
    const deps = new Set<LocatedFunction>();
    const namespace: Record<string, unknown> = {};
    const tagged: number[] = [];
    const ref: FunctionRef = {
      kind: 'value',
      code: functionCode(fn, analysis, names),
      captures,
      tagged,
      run: this.runId,
    };
    const depList: LocatedFunction[] = [];
    const located: LocatedFunction = {
      ref,
      name: fn.name || '(anonymous)',
      namespace,
      value: fn,
      deps: depList,
    };
    // Registered before its captures are: a function that captures itself (or one that captures it) finds it.
    this.byValue.set(fn, located);
    try {
      for (const name of names) {
        const value = scope.get(name);
        const found: Found = { refs: new Map(), instances: new Map() };
        try {
          await this.collect(value, found, true, name, new Set());
        } catch (error) {
          if (error instanceof Refusal) throw refusalError(fn, analysis, name, value, error);
          throw error;
        }
        if (found.refs.size === 0 && found.instances.size === 0) captures.push(value);
        else {
          tagged.push(captures.length);
          captures.push(encodeTags(value, hooks(found, deps)));
        }
        if (typeof value === 'function') namespace[name] = value;
      }
    } catch (error) {
      this.byValue.delete(fn);
      throw error;
    }
    depList.push(...deps);
    if (names.length === 0) this.capturesNothing.set(analysis.source, located);
    return located;
  }

  /** A function or class met inside a value: the same rule as a task's function. */
  private async locateValue(fn: AnyFunction, path: string): Promise<LocatedFunction> {
    try {
      return await this.locate(fn);
    } catch (error) {
      if (error instanceof UnreachableFunctionError && !(error instanceof UncapturableValueError)) {
        const first = error.message.split('\n')[0] ?? '';
        throw new Refusal(
          path,
          `function ${fn.name || '(anonymous)'}`,
          first.replace(/^Cannot run [^:]*: /, ''),
        );
      }
      throw error;
    }
  }

  /** Arguments (not `strict`) that cannot travel are left to structured clone, whose error names them. */
  private async orLeave(
    strict: boolean,
    locate: () => Promise<LocatedFunction>,
  ): Promise<LocatedFunction | undefined> {
    try {
      return await locate();
    } catch (error) {
      if (!strict && error instanceof Refusal) return undefined;
      throw error;
    }
  }

  /**
   * Walks a value and finds what needs a tag. `strict` (captured variables): what cannot travel is
   * refused; arguments leave it to structured clone, whose own error names the argument.
   */
  private async collect(
    value: unknown,
    found: Found,
    strict: boolean,
    path: string,
    seen: Set<object>,
  ): Promise<void> {
    if (typeof value === 'symbol' && strict)
      throw new Refusal(path, 'a symbol', 'use a string, or create the symbol inside the task');
    if (typeof value === 'function') {
      if (found.refs.has(value)) return;
      if (types.isProxy(value)) {
        if (strict) throw new Refusal(path, 'a Proxy', 'pass the function the Proxy wraps');
        return;
      }
      const located = await this.orLeave(strict, () => this.locateValue(value as AnyFunction, path));
      if (located) found.refs.set(value, located);
      return;
    }
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    const never = neverTravels(value);
    if (never) {
      if (strict) throw new Refusal(path, typeName(value), never);
      return;
    }
    if (isModuleNamespace(value)) {
      const module = await findModuleObject(value);
      if (module) found.refs.set(value, module);
      else if (strict) throw new Refusal(path, 'a module namespace', 'import the module inside the task');
      return;
    }
    const kind = containerKind(value);
    if (kind === 'array') {
      const items = value as unknown[];
      for (let i = 0; i < items.length; i++)
        await this.collect(items[i], found, strict, `${path}[${i}]`, seen);
      return;
    }
    if (kind === 'object') {
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      // An object of functions may be a module (`import path from 'node:path'`): then it goes as one.
      if (keys.some((key) => typeof record[key] === 'function')) {
        const module = await findModuleObject(value);
        if (module) {
          found.refs.set(value, module);
          return;
        }
      }
      for (const key of keys) await this.collect(record[key], found, strict, `${path}.${key}`, seen);
      return;
    }
    if (kind === 'map') {
      for (const [k, v] of value as Map<unknown, unknown>) {
        await this.collect(k, found, strict, `${path} (a key)`, seen);
        await this.collect(
          v,
          found,
          strict,
          `${path}.get(${typeof k === 'string' ? JSON.stringify(k) : '…'})`,
          seen,
        );
      }
      return;
    }
    if (kind === 'set') {
      for (const item of value as Set<unknown>)
        await this.collect(item, found, strict, `${path} (an item)`, seen);
      return;
    }
    if (isClonableLeaf(value)) return;
    // An instance of a class: its class travels (by reference or by value), its own fields by copy.
    const ctor = (Object.getPrototypeOf(value) as { constructor?: unknown } | null)?.constructor;
    if (typeof ctor !== 'function' || isInternalClass(ctor as AnyFunction)) {
      const module = strict ? await findModuleObject(value) : undefined;
      if (module) {
        found.refs.set(value, module);
        return;
      }
      if (strict)
        throw new Refusal(
          path,
          typeName(value),
          `create ${typeName(value).replace(/^an? /, 'the ')} inside the task, from plain data passed as an argument (it holds state of Node itself: a handle, a connection or a stream, which only its own thread can use)`,
        );
      return;
    }
    const cls = await this.orLeave(strict, () =>
      this.locateValue(ctor as AnyFunction, `${path}.constructor`),
    );
    if (!cls) return;
    found.instances.set(value, cls);
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record))
      await this.collect(record[key], found, strict, `${path}.${key}`, seen);
  }
}

/** Whether an argument may hold a function or a class instance (a quick, synchronous look). */
const maybe: TagHooks = { ref: () => 1, instance: () => 1 };
function hasObjectArgument(list: readonly unknown[]): boolean {
  for (let i = 0; i < list.length; i++) {
    const arg = list[i];
    if (typeof arg === 'function') return true;
    if (arg !== null && typeof arg === 'object' && needsTags(arg, maybe)) return true;
  }
  return false;
}

function hooks(found: Found, deps: Set<LocatedFunction>): TagHooks {
  const use = (located: LocatedFunction | undefined): number | undefined => {
    if (!located) return undefined;
    deps.add(located);
    return functionId(located);
  };
  return {
    ref: (value) => use(found.refs.get(value)),
    instance: (value) => use(found.instances.get(value)),
  };
}

function refusalError(
  fn: AnyFunction,
  analysis: AnalyzedFunction,
  variable: string,
  value: unknown,
  refusal: Refusal,
): UncapturableValueError {
  const name = fn.name || '(anonymous function)';
  const inner = refusal.path === variable ? '' : `, whose \`${refusal.path}\` is ${refusal.type}`;
  const message = [
    `Cannot run ${name} in a worker: it uses \`${variable}\` (${typeName(value)}${inner}), which cannot be copied to a worker thread or process. ${name} is defined at ${analysis.where}.`,
    `Fix: ${refusal.fix}.`,
  ].join('\n');
  return new UncapturableValueError(message, name, analysis.where, refusal.path, refusal.type);
}
