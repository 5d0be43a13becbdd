// Worker script for workerpool, as its docs recommend: register the methods with workerpool.worker();
// the pool calls them by name with `pool.exec(name, args)`.
import workerpool from 'workerpool';
import { convolve, spin1ms, square, sumArray } from './tasks.mjs';

workerpool.worker({ square, spin1ms, sumArray, convolve });
