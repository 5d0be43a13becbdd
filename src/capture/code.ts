/**
 * A function's code as it travels by value: its source, where that source starts in its script (so a
 * worker compiles it at the same line and column and its stack traces point there), whether it is strict,
 * and what it uses that it does not declare.
 */
import { createHash } from 'node:crypto';
import type { AnyFunction } from '../delayed.ts';
import { UnreachableFunctionError } from '../errors.ts';
import { describeLocation } from '../locate/index.ts';
import { type CodeLocation, inspectFunction, isModuleScript, scriptSource } from '../locate/inspector.ts';
import type { FunctionCode } from '../wire/function-ref.ts';
import { analyzeSource, type CodeFacts } from './free-variables.ts';

/** What does not change between runs: read once per function. */
export interface AnalyzedFunction {
  readonly source: string;
  readonly facts: CodeFacts;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly strict: boolean;
  /** `file:line:column` in the original source, for messages. */
  readonly where: string;
}

const analyzed = new WeakMap<AnyFunction, AnalyzedFunction>();
const byLiteral = new Map<string, AnalyzedFunction>();
const lineStarts = new Map<string, number[]>();

/** Reads `fn`'s code once; throws `UnreachableFunctionError` when it cannot travel by value. */
export function analyzeFunction(fn: AnyFunction): AnalyzedFunction {
  const hit = analyzed.get(fn);
  if (hit) return hit;
  const source = Function.prototype.toString.call(fn);
  const { location } = inspectFunction(fn);
  // Closures made by one function literal (one per task, say) share their analysis.
  const key = location ? `${location.scriptId}:${location.line}:${location.column}` : undefined;
  const same = key ? byLiteral.get(key) : undefined;
  if (same && same.source === source) {
    analyzed.set(fn, same);
    return same;
  }
  const where = location ? describeLocation(location) : 'an unknown place';
  const name = fn.name || '(anonymous function)';
  const facts = analyzeSource(source);
  if (!facts) {
    throw new UnreachableFunctionError(
      `Cannot run ${name} in a worker: its source text could not be read as JavaScript (defined at ${where}), so it cannot be sent to a worker.\nFix: define it at the top level of a module and export it, or write it as a plain function or arrow function.`,
      name,
      where,
    );
  }
  if (facts.outerThis || facts.usesSuper) {
    const what = facts.usesSuper ? 'super' : (facts.outerThis as string);
    throw new UnreachableFunctionError(
      `Cannot run ${name} in a worker: it uses \`${what}\` of the method or function it is defined in (at ${where}), which cannot be sent to a worker.\nFix: copy what it needs into local constants before delayed(), e.g. \`const factor = this.factor; delayed((x) => x * factor)(...)\`, or pass it as an argument.`,
      name,
      where,
    );
  }
  const script = location ? scriptSource(location.scriptId) : undefined;
  const start = location && script !== undefined ? sourceStart(location, script, source) : undefined;
  const result: AnalyzedFunction = {
    source,
    facts,
    file: location?.url || '<anonymous>',
    line: start?.line ?? location?.line ?? 0,
    column: start?.column ?? location?.column ?? 0,
    strict:
      facts.strictBody ||
      (location !== undefined && isModuleScript(location.scriptId)) ||
      (script !== undefined && /^(?:\s|\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)*(['"])use strict\1/.test(script)),
    where,
  };
  analyzed.set(fn, result);
  if (key) byLiteral.set(key, result);
  return result;
}

/**
 * Where the source text starts: V8's `[[FunctionLocation]]` is the parameter list (or a class's
 * constructor), so search back from it for the text `toString()` gave.
 */
function sourceStart(
  location: CodeLocation,
  script: string,
  source: string,
): { line: number; column: number } | undefined {
  const starts = lineStartsOf(location.scriptId, script);
  const offset = (starts[location.line] ?? 0) + location.column;
  const at = script.lastIndexOf(source, offset);
  if (at < 0 || at + source.length < offset) return undefined;
  let line = 0;
  let high = starts.length - 1;
  while (line < high) {
    const mid = (line + high + 1) >> 1;
    if ((starts[mid] as number) <= at) line = mid;
    else high = mid - 1;
  }
  return { line, column: at - (starts[line] as number) };
}

function lineStartsOf(scriptId: string, script: string): number[] {
  let starts = lineStarts.get(scriptId);
  if (!starts) {
    starts = [0];
    for (let i = script.indexOf('\n'); i >= 0; i = script.indexOf('\n', i + 1)) starts.push(i + 1);
    lineStarts.set(scriptId, starts);
  }
  return starts;
}

const codes = new WeakMap<AnalyzedFunction, Map<string, FunctionCode>>();

/** The code to send, binding `names` (the free variables found this run): one object, one hash per set of names. */
export function functionCode(
  fn: AnyFunction,
  analysis: AnalyzedFunction,
  names: readonly string[],
): FunctionCode {
  let byNames = codes.get(analysis);
  if (!byNames) {
    byNames = new Map();
    codes.set(analysis, byNames);
  }
  const key = names.join(',');
  let code = byNames.get(key);
  if (!code) {
    const fields = {
      source: analysis.source,
      form: analysis.facts.form,
      strict: analysis.strict,
      names,
      name: fn.name,
      file: analysis.file,
      line: analysis.line,
      column: analysis.column,
    };
    const hash = createHash('sha1').update(JSON.stringify(fields)).digest('base64url');
    code = { hash, ...fields };
    byNames.set(key, code);
  }
  return code;
}
