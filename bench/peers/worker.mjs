// Worker module for piscina and tinypool, as their docs recommend: `filename` points here and each
// task picks an export with the `name` run option; a task's data is its single argument.
import * as tasks from './tasks.mjs';

export function square(x) {
  return tasks.square(x);
}

export function spin1ms(iterations) {
  return tasks.spin1ms(iterations);
}

export function sumArray(values) {
  return tasks.sumArray(values);
}

/** The data is `{ a, b }`: piscina and tinypool pass one value per task. */
export function convolve({ a, b }) {
  return tasks.convolve(a, b);
}

export default square;
