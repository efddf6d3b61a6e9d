/**
 * Column sums as a WebAssembly SIMD function over the wasm backend's memory (core/compute/wasm-asm.ts):
 * out[c] += x[r][c] for every row r in order, four columns at a time. `out` must start at zero.
 *
 * colSum(x, out, rows, rowBytes): rowBytes = columns * 4, columns a multiple of 4.
 */
import { I32, V128, fadd, forLoop, get, iadd, imul, load, set, store, type WasmFunction } from './wasm-asm.ts';
import { backendKernel } from './backend-kernel.ts';

export type ColSumKernel = (x: number, out: number, rows: number, rowBytes: number) => void;

function colSumFunction(): WasmFunction {
  const [X, OUT, ROWS, ROW_BYTES] = [0, 1, 2, 3];
  const [R, K, ROW] = [4, 5, 6];
  const perRow = [
    ...iadd(get(X), imul(get(R), get(ROW_BYTES))), ...set(ROW),
    ...forLoop(K, get(ROW_BYTES), 16, store(iadd(get(OUT), get(K)), fadd(load(iadd(get(OUT), get(K))), load(iadd(get(ROW), get(K)))))),
  ];
  return { name: 'colSum', params: [I32, I32, I32, I32], locals: [[3, I32], [0, V128]], code: forLoop(R, get(ROWS), 1, perRow) };
}

/** The kernel over the current wasm backend's memory (made once per memory), or null on another backend. */
export const wasmColSumKernel = backendKernel<ColSumKernel>(colSumFunction);
