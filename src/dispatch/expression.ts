import { invalidArgument } from '../errors.ts';

/**
 * Evaluates joblib-style `preDispatch` expressions such as `'2*nJobs'` or `'3 * nJobs + 1'`: numbers,
 * `nJobs`, + - * / and parentheses, nothing else (no code is ever evaluated). `'all'` is Infinity.
 */
export function evaluatePreDispatch(expression: number | string, nJobs: number): number {
  if (typeof expression === 'number') {
    if (!Number.isInteger(expression) || expression < 1) {
      throw invalidArgument(
        'preDispatch',
        "a positive integer, 'all', or an expression such as '2*nJobs'",
        expression,
      );
    }
    return expression;
  }
  const bad = () =>
    invalidArgument(
      'preDispatch',
      "a positive integer, 'all', or an expression such as '2*nJobs'",
      expression,
    );
  if (typeof expression !== 'string' || expression.length > 30) throw bad();
  if (expression.trim() === 'all') return Number.POSITIVE_INFINITY;
  const tokens = expression.match(/\d+(?:\.\d+)?|nJobs|[-+*/()]|\S/g) ?? [];
  let position = 0;
  const peek = () => tokens[position];
  const take = () => tokens[position++];
  const primary = (): number => {
    const token = take();
    if (token === '(') {
      const value = sum();
      if (take() !== ')') throw bad();
      return value;
    }
    if (token === '-') return -primary();
    if (token === 'nJobs') return nJobs;
    if (token !== undefined && /^\d/.test(token)) return Number(token);
    throw bad();
  };
  const product = (): number => {
    let value = primary();
    while (peek() === '*' || peek() === '/') value = take() === '*' ? value * primary() : value / primary();
    return value;
  };
  const sum = (): number => {
    let value = product();
    while (peek() === '+' || peek() === '-') value = take() === '+' ? value + product() : value - product();
    return value;
  };
  const value = sum();
  if (position !== tokens.length || !Number.isFinite(value) || value < 1) throw bad();
  return Math.floor(value);
}
