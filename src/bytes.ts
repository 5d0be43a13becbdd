/**
 * Byte sizes as users write them in options (`bytesLimit`, `maxNbytes`...): one parser, so that every
 * option accepts the same spellings. It throws nothing: each caller raises its own error class with a
 * message that names its own option.
 */

/** Powers of 1024, as joblib and `du -h` count. */
const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Parses a byte size: a non-negative finite number (returned as is), or a string like `'512K'`, `'1.5G'`,
 * `'10 MiB'`, `'3KB'` (floored to whole bytes). Returns undefined for anything else.
 */
export function parseBytes(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$/i.exec(value);
  const scale = UNITS[m?.[2]?.toUpperCase() ?? ''];
  if (m?.[1] === undefined || scale === undefined) return undefined;
  return Math.floor(Number(m[1]) * scale);
}
