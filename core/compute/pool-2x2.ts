/**
 * The 2x2, stride-2 pooling our max-pool kernels (forward and gradient) take over, and the walk
 * both their SIMD functions make over NHWC
 * memory: for each output row r (batch * output height), each output column j and each 16 bytes k
 * of channels, `inner` runs with TOP = the byte offset of the window's top-left input (input row
 * 2r, column 2j) and G = the byte offset of the output (row r, column j); positions inside the
 * window are TOP + k, + C4 (next column), + ROW_BYTES (next row).
 */
import { forLoop, get, iadd, imul, set, type Code } from './wasm-asm.ts';
import type { TensorInfo } from './tf.ts';

/** A pooling kernel's attributes as tfjs passes them. */
export interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: unknown;
  dimRoundingMode?: string;
}

const pair = (v: number | [number, number]) => (Array.isArray(v) ? v : [v, v]);

/** Whether a pool is the one our kernels cover: 2x2, stride 2, 'valid', over float32 NHWC `x` of even height and width. */
export function is2x2Stride2Valid(attrs: PoolAttrs, x: TensorInfo): boolean {
  const [fh, fw] = pair(attrs.filterSize);
  const [sh, sw] = pair(attrs.strides);
  const [, h, w] = x.shape;
  return fh === 2 && fw === 2 && sh === 2 && sw === 2 && attrs.pad === 'valid' && x.dtype === 'float32' && h % 2 === 0 && w % 2 === 0;
}

/** Local indices the walk reads (ROWS, WO, C4, ROW_BYTES: parameters) and writes (R, J, K, TOP, G). */
export interface PoolWindowLocals {
  ROWS: number;
  WO: number;
  C4: number;
  ROW_BYTES: number;
  R: number;
  J: number;
  K: number;
  TOP: number;
  G: number;
}

export function poolWindowLoops(l: PoolWindowLocals, inner: Code): Code {
  const perColumn = [
    ...forLoop(l.K, get(l.C4), 16, inner),
    // next window: two input columns on, one output column on
    ...iadd(get(l.TOP), iadd(get(l.C4), get(l.C4))), ...set(l.TOP),
    ...iadd(get(l.G), get(l.C4)), ...set(l.G),
  ];
  const perRow = [
    // window row r starts at input row 2r
    ...imul(get(l.R), iadd(get(l.ROW_BYTES), get(l.ROW_BYTES))), ...set(l.TOP),
    ...imul(get(l.R), imul(get(l.WO), get(l.C4))), ...set(l.G),
    ...forLoop(l.J, get(l.WO), 1, perColumn),
  ];
  return forLoop(l.R, get(l.ROWS), 1, perRow);
}
