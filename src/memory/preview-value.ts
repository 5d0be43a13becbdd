/**
 * One-line descriptions of argument values, for entry metadata (`input`) and verbose call banners.
 * Unlike `describeValue` in `src/errors.ts`, which names a value's kind in an error message, this one
 * shows the value itself when it is short (`[1, 2]`, `"abc"`, `Float64Array(3)`).
 */

/** A short, one-line description of a value, at most about `max` characters. */
export function previewValue(value: unknown, max = 60): string {
  const out = describeUntrimmed(value, max);
  return out.length > max + 2 ? `${out.slice(0, max)}…` : out;
}

function describeUntrimmed(value: unknown, max: number): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
    case 'bigint':
      return `${value}n`;
    case 'function':
      return `[Function ${value.name || 'anonymous'}]`;
    case 'symbol':
      return value.toString();
    case 'object':
      return value === null ? 'null' : describeObject(value);
    default:
      return String(value);
  }
}

function describeObject(value: object): string {
  if (ArrayBuffer.isView(value)) {
    const n = 'length' in value ? (value as { length: number }).length : value.byteLength;
    return `${value.constructor.name}(${n})`;
  }
  if (Array.isArray(value)) {
    return value.length <= 4
      ? `[${value.map((v) => previewValue(v, 12)).join(', ')}]`
      : `Array(${value.length})`;
  }
  if (value instanceof Map) return `Map(${value.size})`;
  if (value instanceof Set) return `Set(${value.size})`;
  if (value instanceof Date)
    return `Date(${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`;
  const keys = Object.keys(value);
  const name = value.constructor && value.constructor !== Object ? `${value.constructor.name} ` : '';
  return `${name}{${keys.slice(0, 4).join(', ')}${keys.length > 4 ? ', …' : ''}}`;
}
