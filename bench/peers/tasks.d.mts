// Types of the JavaScript copies in tasks.mjs (the same signatures as bench/tasks.ts).
export declare function square(x: number): number;
export declare function spin1ms(iterations: number): number;
export declare function sumArray(values: Float64Array): number;
export declare function convolve(a: Float64Array, b: Float64Array): Float64Array;
