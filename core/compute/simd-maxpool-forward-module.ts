/**
 * The 2x2, stride-2 max pool as a WebAssembly SIMD function over the wasm backend's memory
 * (core/compute/wasm-asm.ts), four channels at a time, on the calling thread. wasm's own MaxPool
 * runs XNNPACK's operator on tfjs's thread pool, which for this memory-bound pass cost ~3x the CPU of
 * one thread and leaves the pool's worker spinning into the kernels that follow.
 *
 * XNNPACK's 9-element micro-kernel runs a 4-element window with the missing inputs pointing at the
 * first, and takes the maximum as a fixed tree of f32x4.pmax (b where a < b, else a) followed by
 * its output clamp to [-inf, +inf] (pmax with -inf, then pmin with +inf). Which of two equal
 * values (+0 and -0) or of a NaN and a number comes out depends on that tree, so it is written out
 * here exactly, with the window's positions in XNNPACK's order: (0, 0), (1, 0), (0, 1), (1, 1).
 *
 * maxPool(x, y, rows, wo, c4, rowBytes): `rows` = batch * output height; `wo` output columns;
 * `c4` = channels * 4 bytes (channels a multiple of 4); `rowBytes` one input row's bytes.
 */
import { I32, V128, fconst, fpmax, fpmin, get, iadd, load, set, store, type WasmFunction } from './wasm-asm.ts';
import { backendKernel } from './backend-kernel.ts';
import { poolWindowLoops } from './pool-2x2.ts';

export type MaxPoolKernel = (x: number, y: number, rows: number, wo: number, c4: number, rowBytes: number) => void;

function maxPoolFunction(): WasmFunction {
  const [X, Y, ROWS, WO, C4, ROW_BYTES] = [0, 1, 2, 3, 4, 5];
  const [R, J, K, TOP, G] = [6, 7, 8, 9, 10];
  const [I0, I1, I2, I3] = [11, 12, 13, 14];
  const at = iadd(get(X), iadd(get(TOP), get(K)));
  const inner = [
    ...load(at), ...set(I0),
    ...load(iadd(at, get(ROW_BYTES))), ...set(I1),
    ...load(iadd(at, get(C4))), ...set(I2),
    ...load(iadd(iadd(at, get(ROW_BYTES)), get(C4))), ...set(I3),
    // vmax01 = pmax(i1, i0); vmax23 = pmax(i3, i2); vmax45 = vmax67 = i0; vmax018 = pmax(i0, vmax01);
    // vmax = pmax(pmax(vmax45, vmax23), pmax(vmax67, vmax018)); then the clamp
    ...store(
      iadd(get(Y), iadd(get(G), get(K))),
      fpmin(fconst(Infinity), fpmax(fconst(-Infinity), fpmax(fpmax(get(I0), fpmax(get(I3), get(I2))), fpmax(get(I0), fpmax(get(I0), fpmax(get(I1), get(I0))))))),
    ),
  ];
  return {
    name: 'maxPool',
    params: [I32, I32, I32, I32, I32, I32],
    locals: [[5, I32], [4, V128]],
    code: poolWindowLoops({ ROWS, WO, C4, ROW_BYTES, R, J, K, TOP, G }, inner),
  };
}

/** The kernel over the current wasm backend's memory (made once per memory), or null on another backend. */
export const wasmMaxPoolKernel = backendKernel<MaxPoolKernel>(maxPoolFunction);
