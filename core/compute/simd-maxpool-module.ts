/**
 * The 2x2, stride-2 max-pool gradient as a WebAssembly SIMD function over the wasm backend's memory
 * (core/compute/wasm-asm.ts), four channels at a time: each input position gets the upstream
 * gradient of its window if it is the window's first maximum in row-major order, else +0, the rule
 * of core/compute/maxpool-grad-kernel.ts's JS loop (the same comparisons, so the same bits).
 *
 * maxPoolGrad(x, dy, dx, rows, wo, c4, rowBytes): `rows` = batch * output height; `wo` output
 * columns; `c4` = channels * 4 bytes (channels a multiple of 4); `rowBytes` one input row's bytes.
 */
import { I32, V128, bitselect, fgt, get, iadd, load, set, store, vand, vandnot, vnot, vor, type WasmFunction } from './wasm-asm.ts';
import { backendKernel } from './backend-kernel.ts';
import { poolWindowLoops } from './pool-2x2.ts';

export type MaxPoolGradKernel = (x: number, dy: number, dx: number, rows: number, wo: number, c4: number, rowBytes: number) => void;

function maxPoolGradFunction(): WasmFunction {
  const [X, DY, DX, ROWS, WO, C4, ROW_BYTES] = [0, 1, 2, 3, 4, 5, 6];
  // i32 locals: r, j, k, top (byte offset of the window's top-left in x and dx), g (in dy)
  const [R, J, K, TOP, G] = [7, 8, 9, 10, 11];
  // v128 locals
  const [X00, X01, X10, X11, MAX, IS01, IS10, IS11, GV] = [12, 13, 14, 15, 16, 17, 18, 19, 20];
  const p00 = iadd(get(TOP), get(K));
  const p01 = iadd(p00, get(C4));
  const p10 = iadd(p00, get(ROW_BYTES));
  const p11 = iadd(p10, get(C4));
  const inner = [
    ...load(iadd(get(X), p00)), ...set(X00),
    ...load(iadd(get(X), p01)), ...set(X01),
    ...load(iadd(get(X), p10)), ...set(X10),
    ...load(iadd(get(X), p11)), ...set(X11),
    ...load(iadd(get(DY), iadd(get(G), get(K)))), ...set(GV),
    // best = 00; a later position wins only when strictly greater than the best so far
    ...fgt(get(X01), get(X00)), ...set(IS01),
    ...bitselect(get(X01), get(X00), get(IS01)), ...set(MAX),
    ...fgt(get(X10), get(MAX)), ...set(IS10),
    ...bitselect(get(X10), get(MAX), get(IS10)), ...set(MAX),
    ...fgt(get(X11), get(MAX)), ...set(IS11),
    ...store(iadd(get(DX), p11), vand(get(GV), get(IS11))),
    ...store(iadd(get(DX), p10), vand(get(GV), vandnot(get(IS10), get(IS11)))),
    ...store(iadd(get(DX), p01), vand(get(GV), vandnot(vandnot(get(IS01), get(IS10)), get(IS11)))),
    ...store(iadd(get(DX), p00), vand(get(GV), vnot(vor(vor(get(IS01), get(IS10)), get(IS11))))),
  ];
  return {
    name: 'maxPoolGrad',
    params: [I32, I32, I32, I32, I32, I32, I32],
    locals: [[5, I32], [9, V128]],
    code: poolWindowLoops({ ROWS, WO, C4, ROW_BYTES, R, J, K, TOP, G }, inner),
  };
}

/** The kernel over the current wasm backend's memory (made once per memory), or null on another backend. */
export const wasmMaxPoolGradKernel = backendKernel<MaxPoolGradKernel>(maxPoolGradFunction);
