/**
 * Compiles functions sent by value, once per worker per code (cached by its content hash). The code is
 * compiled with `vm.Script` under the file name and at the line and column where the caller's V8 ran it,
 * so that its stack frames point there (the caller maps them through its source maps); not with
 * `new Function`, whose frames say `<anonymous>`.
 */

import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { BY_VALUE_FILE_MARK, type FunctionCode } from '../wire/function-ref.ts';

/**
 * One run's copy of a function. A function is made first and its captured variables bound after (a
 * function that captures itself needs both steps); a class is made after, since its static
 * initializers run as it is made and may use them.
 */
export interface Instance {
  /** Whether `make` must come after `bind`. */
  readonly bindFirst: boolean;
  make(): unknown;
  bind(captures: readonly unknown[]): void;
}

type Made = { s(values: readonly unknown[]): void; f?: () => unknown; o?: () => object };
type Outer = () => Made;

const compiled = new Map<string, { outer: Outer; name: string; isClass: boolean }>();
const VALUES = '$joblibTsCaptured$';

/** Whether this worker has compiled `hash` already (the caller then sends the hash alone). */
export function hasCode(hash: string): boolean {
  return compiled.has(hash);
}

/** Compiles `code` (a no-op when this worker already has it). */
export function compileCode(code: FunctionCode): void {
  if (compiled.has(code.hash)) return;
  const { names } = code;
  if (names.includes(VALUES)) throw new Error(`joblib-ts: a captured variable is named ${VALUES}.`);
  // The captured variables are the outer function's own `let`s, so that the code sees them as it saw
  // its closure's, and can assign them (its copy only: captures are a snapshot).
  const declare = names.length > 0 ? `let ${names.join(', ')}; ` : '';
  const assign = names.length > 0 ? `[${names.join(', ')}] = ${VALUES};` : '';
  const open = code.form === 'method' ? 'o: () => ({' : 'f: () => (';
  const close = code.form === 'method' ? '\n})' : '\n)';
  const prefix = `(function () {${code.strict ? ' "use strict";' : ''} ${declare}return { s(${VALUES}) { ${assign} }, ${open}`;
  const text = `${prefix}${code.source}${close} }; })`;
  const options: vm.ScriptOptions = {
    filename: (code.file.startsWith('/') ? pathToFileURL(code.file).href : code.file) + BY_VALUE_FILE_MARK,
    lineOffset: code.line,
    // The source's first line starts after the prefix: shift it back to the column it had.
    columnOffset: code.column - prefix.length,
  };
  // `import()` inside the code resolves as the worker's own imports do (Node 20.13+; before, it throws).
  const loader = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (loader !== undefined) options.importModuleDynamically = loader;
  const outer = new vm.Script(text, options).runInThisContext() as Outer;
  compiled.set(code.hash, { outer, name: code.name, isClass: /^class\b/.test(code.source) });
}

/** A fresh copy of the function compiled as `hash`, its captures not bound yet. */
export function instantiate(hash: string): Instance {
  const entry = compiled.get(hash);
  if (!entry) throw new Error(`joblib-ts internal error: code ${hash} was never sent to this worker.`);
  const { outer, name } = entry;
  const made = outer();
  const make = (): unknown => {
    let value: unknown;
    if (made.o) {
      const [descriptor] = Object.values(Object.getOwnPropertyDescriptors(made.o()));
      value = descriptor?.value ?? descriptor?.get ?? descriptor?.set;
    } else value = made.f?.();
    if (typeof value === 'function' && value.name !== name) {
      // An anonymous arrow would be nameless here: keep the name the caller's function has.
      Object.defineProperty(value, 'name', { value: name, configurable: true });
    }
    return value;
  };
  return { bindFirst: entry.isClass, make, bind: (captures) => made.s(captures) };
}
