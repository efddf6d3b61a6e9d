/**
 * The inner loop of the convolution filter gradient as WebAssembly SIMD functions over the wasm
 * backend's memory (core/compute/wasm-asm.ts). One call adds to a tile of `nci` input channels x
 * 4 * `nco` output channels of dW[ky, kx] the products x[b, iy, ix, ci] * dy[b, oy, ix - kx + pl, co]
 * of one output row oy, for ox over a run of columns and b over the batch, in that order (ox outer,
 * b inner), one product at a time into one accumulator per output (f32x4 mul, then add): the order
 * and the operations in which XNNPACK's GEMM sums the transposed convolution tfjs would run, so the
 * sums have the same bits.
 *
 * tile(x, dy, out, cols, batch, xBatch, dyBatch, xCol, dyCol, outRow): pointers (bytes) to the
 * first x and dy values of the run and to dW[ky, kx, ci0, co0]; `cols` columns of `batch` images;
 * the byte strides of x and dy from one image to the next and from one column to the next; and of
 * dW from one input channel to the next.
 */
import { I32, V128, backendKernel, forLoop, get, iadd, imul, i32, loadAt, loadSplatAt, fadd, fmul, set, storeAt, type WasmFunction } from './wasm-asm.ts';

export type FilterTileKernel = (
  x: number, dy: number, out: number, cols: number, batch: number,
  xBatch: number, dyBatch: number, xCol: number, dyCol: number, outRow: number,
) => void;

/** Input channels per tile: 1 to 4; output channels per tile: 4 x 1 or 2. */
export const MAX_TILE_CI = 4;
export const MAX_TILE_CO4 = 2;

function filterTileFunction(nci: number, nco: number): WasmFunction {
  const [X, DY, OUT, COLS, BATCH, XB, DYB, XC, DYC, OROW] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [C, B, XP, DYP] = [10, 11, 12, 13];
  const firstV = 14;
  const acc = (i: number, j: number) => firstV + i * nco + j;
  const d = (j: number) => firstV + nci * nco + j;
  const S = firstV + nci * nco + nco;
  const row = (i: number) => iadd(get(OUT), imul(i32(i), get(OROW)));
  const loadAcc: number[] = [];
  const storeAcc: number[] = [];
  for (let i = 0; i < nci; i++) {
    for (let j = 0; j < nco; j++) {
      loadAcc.push(...loadAt(row(i), 16 * j), ...set(acc(i, j)));
      storeAcc.push(...storeAt(row(i), 16 * j, get(acc(i, j))));
    }
  }
  const perImage: number[] = [];
  for (let j = 0; j < nco; j++) perImage.push(...loadAt(get(DYP), 16 * j), ...set(d(j)));
  for (let i = 0; i < nci; i++) {
    perImage.push(...loadSplatAt(get(XP), 4 * i), ...set(S));
    for (let j = 0; j < nco; j++) perImage.push(...fadd(get(acc(i, j)), fmul(get(S), get(d(j)))), ...set(acc(i, j)));
  }
  perImage.push(...iadd(get(XP), get(XB)), ...set(XP), ...iadd(get(DYP), get(DYB)), ...set(DYP));
  const perColumn = [
    ...iadd(get(X), imul(get(C), get(XC))), ...set(XP),
    ...iadd(get(DY), imul(get(C), get(DYC))), ...set(DYP),
    ...forLoop(B, get(BATCH), 1, perImage),
  ];
  return {
    name: `filterTile${nci}x${nco}`,
    params: Array<number>(10).fill(I32),
    locals: [[4, I32], [nci * nco + nco + 1, V128]],
    code: [...loadAcc, ...forLoop(C, get(COLS), 1, perColumn), ...storeAcc],
  };
}

const getters = Array.from({ length: MAX_TILE_CI }, (_, i) =>
  Array.from({ length: MAX_TILE_CO4 }, (_, j) => backendKernel<FilterTileKernel>(() => filterTileFunction(i + 1, j + 1))),
);

/** The tile function for `nci` input and 4 x `nco` output channels over the current wasm memory, or null on another backend. */
export function wasmFilterTileKernel(nci: number, nco: number): FilterTileKernel | null {
  return getters[nci - 1][nco - 1]();
}
