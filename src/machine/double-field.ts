/**
 * The first value of a field that will hold times. Nanosecond times pass 2^31 at 2.1 simulated
 * seconds; V8 keeps a number field that has only held small integers as a small integer and, the
 * first time it holds a larger number, throws away every optimised function that reads it. A field
 * whose first value is a double is stored as a double from the start, so time fields are born
 * with this value and set to their real starting value at once. Nothing ever reads it.
 */
export const DOUBLE_FIELD = 0.5;
