/** Whether two float32 arrays hold the same bits (NaN payloads and the sign of zero included). */
export const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * Whether two float32 arrays hold the same bits except that any NaN matches any NaN: which of two
 * NaNs an x86 add returns depends on the operand order V8's instruction selection picks for the
 * add, which differs between two compiled kernels that make the same operations in the same order.
 */
export const sameBitsOrNaN = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && a.every((v, i) => (Number.isNaN(v) ? Number.isNaN(b[i]) : Object.is(v, b[i])));
