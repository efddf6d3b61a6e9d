/**
 * The walk both 2x2, stride-2 max-pool SIMD functions (forward and gradient) make over NHWC
 * memory: for each output row r (batch * output height), each output column j and each 16 bytes k
 * of channels, `inner` runs with TOP = the byte offset of the window's top-left input (input row
 * 2r, column 2j) and G = the byte offset of the output (row r, column j); positions inside the
 * window are TOP + k, + C4 (next column), + ROW_BYTES (next row).
 */
import { forLoop, get, iadd, imul, set, type Code } from './wasm-asm.ts';

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
