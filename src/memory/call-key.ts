/**
 * The cache key of a call: which arguments count (`ignore`, or a custom `key`), their hash, and the short
 * description of each that goes into the entry's metadata.
 */

import type { AnyFunction } from '../delayed.ts';
import { HashError, hash } from '../hash.ts';
import { checkNonNegative, optionError } from './checks.ts';
import { MemoryError } from './errors.ts';
import { type ParsedParams, parseParams } from './identity.ts';
import { previewValue } from './preview-value.ts';

/** Which argument positions a function's key leaves out, worked out once from its `ignore` option. */
export interface KeyPlan {
  params: ParsedParams | undefined;
  ignored: Set<number>;
  /** A rest parameter that is ignored: every position from here on is left out. */
  ignoreFrom: number;
}

export interface CallKey {
  argsId: string;
  input: Record<string, string>;
}

export function buildKeyPlan(
  fn: AnyFunction,
  ignore: readonly (string | number)[] | undefined,
  name: string,
): KeyPlan {
  const params = parseParams(Function.prototype.toString.call(fn));
  const plan: KeyPlan = { params, ignored: new Set<number>(), ignoreFrom: Number.POSITIVE_INFINITY };
  if (ignore === undefined) return plan;
  if (!Array.isArray(ignore)) {
    throw optionError(
      `cache(${name}, options): options.ignore must be an array of parameter names or positions; got ${JSON.stringify(ignore)}`,
    );
  }
  for (const item of ignore as unknown[]) addIgnored(plan, item, name);
  return plan;
}

function addIgnored(plan: KeyPlan, item: unknown, name: string): void {
  if (typeof item === 'number') {
    checkNonNegative(item, `cache(${name}, options): options.ignore position`, true);
    plan.ignored.add(item);
    return;
  }
  if (typeof item !== 'string') {
    throw optionError(
      `cache(${name}, options): options.ignore entries must be parameter names or positions; got ${JSON.stringify(item)}`,
    );
  }
  const params = plan.params;
  const index = params?.names.indexOf(item) ?? -1;
  if (index === -1 || params === undefined) {
    const known = params ? params.names.filter((n) => n !== null).join(', ') || 'none' : 'unreadable source';
    throw optionError(
      `cache(${name}, options): options.ignore names '${item}', which is not a parameter of ${name} (parameters found: ${known}); use a position for destructured parameters`,
    );
  }
  if (params.rest && index === params.names.length - 1) plan.ignoreFrom = Math.min(plan.ignoreFrom, index);
  else plan.ignored.add(index);
}

/** The key of one call: `hash(key(...args))` with a custom key, else the hash of the arguments that count. */
export function callKey<A extends unknown[]>(
  plan: KeyPlan,
  keyFn: ((...args: A) => unknown) | undefined,
  label: string,
  args: A,
): CallKey {
  const input: Record<string, string> = {};
  let material: unknown;
  if (keyFn !== undefined) {
    material = { key: keyFn(...args) };
    args.forEach((a, i) => {
      input[plan.params?.names[i] ?? `arg${i}`] = previewValue(a);
    });
  } else {
    material = keyedArguments(plan, args, input);
  }
  return { argsId: hashKey(material, label), input };
}

/** The `[position, value]` pairs that make the key; fills `input` with their descriptions. */
function keyedArguments(
  plan: KeyPlan,
  args: readonly unknown[],
  input: Record<string, string>,
): [number, unknown][] {
  let n = args.length;
  // A declared parameter receiving `undefined` cannot tell it from an omitted argument: f(1) == f(1, undefined).
  if (plan.params !== undefined) {
    const declared = plan.params.names.length - (plan.params.rest ? 1 : 0);
    while (n > 0 && n <= declared && args[n - 1] === undefined) n--;
  }
  const entries: [number, unknown][] = [];
  for (let i = 0; i < n; i++) {
    if (plan.ignored.has(i) || i >= plan.ignoreFrom) continue;
    entries.push([i, args[i]]);
    input[plan.params?.names[i] ?? `arg${i}`] = previewValue(args[i]);
  }
  return entries;
}

function hashKey(material: unknown, label: string): string {
  try {
    return hash(material);
  } catch (err) {
    if (!(err instanceof HashError)) throw err;
    throw new MemoryError(
      'ERR_MEMORY_ARGS',
      `${label}: the arguments cannot be used as a cache key: ${err.message.replace('hash(value): ', '')}. ` +
        `Leave such arguments out with { ignore: [...] } or give { key: (...args) => ... }`,
      { cause: err },
    );
  }
}
