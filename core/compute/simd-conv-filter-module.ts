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
 *
 * A whole filter gradient is a list of work items (one per (ky, kx) and tile of channels, each
 * writing its own part of dW), run over every output row by `runFilterItems`; with the threaded
 * build the items are shared between the main thread and helper threads
 * (core/compute/wasm-helper-threads.ts).
 */
import { threadedKernel } from './wasm-helper-threads.ts';
import { I32, V128, forLoop, get, iadd, imul, i32, loadAt, loadSplatAt, fadd, fmul, set, storeAt, tileFunctions, type WasmFunction } from './wasm-asm.ts';

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

/** Every tile function, input channels major: index (nci - 1) * MAX_TILE_CO4 + nco - 1. */
const filterTileFunctions = () => tileFunctions(MAX_TILE_CI, MAX_TILE_CO4, filterTileFunction);

/** The parameters of `runFilterItems`, in order. */
export interface FilterJob {
  x: number;
  dy: number;
  dw: number;
  batch: number;
  h: number;
  w: number;
  ci: number;
  ho: number;
  wo: number;
  co: number;
  kh: number;
  kw: number;
  padTop: number;
  padLeft: number;
  /**
   * x and dy are laid out [H, W, B, C] (true) instead of NHWC (false): the images of one pixel
   * side by side, so a tile's run of columns and images walks memory in one straight line
   * instead of jumping a whole image (often a new page) at every step. The sums are the same.
   */
  pixelMajor: boolean;
}

/** Bytes from one pixel to the next and from one image to the next of a [B, H, W, C] or [H, W, B, C] tensor. */
function strides(pixelMajor: boolean, batch: number, pixels: number, c: number): [number, number] {
  return pixelMajor ? [4 * c * batch, 4 * c] : [4 * c, 4 * pixels * c];
}

const jobParams = (j: FilterJob): number[] => [
  j.x, j.dy, j.dw, j.batch, j.h, j.w, j.ci, j.ho, j.wo, j.co, j.kh, j.kw, j.padTop, j.padLeft, MAX_TILE_CI, MAX_TILE_CO4,
  ...strides(j.pixelMajor, j.batch, j.h * j.w, j.ci), ...strides(j.pixelMajor, j.batch, j.ho * j.wo, j.co),
];

/** Work items of a job: one per (ky, kx), tile of input channels and tile of output channels. */
export function filterItems(j: FilterJob): number {
  return j.kh * j.kw * Math.ceil(j.ci / MAX_TILE_CI) * Math.ceil(j.co / 4 / MAX_TILE_CO4);
}

/**
 * Items [from, to) of a job (parameters in FilterJob's order, then the tile maxima) for every output
 * row oy in order; each item adds that row's products to its own (ky, kx, channel tile) of dW.
 * Self-contained (helper threads run its source text).
 */
export function runFilterItems(tiles: Array<(...args: number[]) => void>, p: ArrayLike<number>, from: number, to: number): void {
  const x = p[0], dy = p[1], dw = p[2], batch = p[3], h = p[4], w = p[5], ci = p[6];
  const ho = p[7], wo = p[8], co = p[9], kw = p[11], padTop = p[12], padLeft = p[13], tileCi = p[14], tileCo4 = p[15];
  const xPixel = p[16], xImage = p[17], dyPixel = p[18], dyImage = p[19];
  const co4 = co / 4;
  const coTiles = Math.ceil(co4 / tileCo4);
  const perK = Math.ceil(ci / tileCi) * coTiles;
  for (let oy = 0; oy < ho; oy++) {
    for (let t = from; t < to; t++) {
      const k = Math.floor(t / perK);
      const ky = Math.floor(k / kw);
      const kx = k - ky * kw;
      const iy = oy + ky - padTop;
      const lo = Math.max(0, padLeft - kx);
      const hi = Math.min(wo, w + padLeft - kx);
      if (iy < 0 || iy >= h || hi <= lo) continue;
      const r = t - k * perK;
      const c0 = Math.floor(r / coTiles) * tileCi;
      const q0 = (r % coTiles) * tileCo4;
      const nci = Math.min(tileCi, ci - c0);
      const nco = Math.min(tileCo4, co4 - q0);
      tiles[(nci - 1) * tileCo4 + nco - 1](
        x + (iy * w + lo + kx - padLeft) * xPixel + 4 * c0,
        dy + (oy * wo + lo) * dyPixel + 16 * q0,
        dw + 4 * ((k * ci + c0) * co + 4 * q0),
        hi - lo, batch, xImage, dyImage, xPixel, dyPixel, 4 * co,
      );
    }
  }
}

// one chunk per thread: each call of runFilterItems walks every output row of x and dy
const kernel = threadedKernel(filterTileFunctions, runFilterItems, 1);

/** Whether the functions can run over the current backend's memory (false on another backend). */
export const filterTilesAvailable = kernel.available;

/** Helper threads ready to take work (0 before the first threaded job). */
export const filterHelpersReady = kernel.helpersReady;

/** Run a job over the current wasm memory on `threads` threads; false on another backend (nothing was written). */
export function runFilterJob(job: FilterJob, threads: number): boolean {
  return kernel.run(jobParams(job), filterItems(job), job.batch * job.ho * job.wo * job.kh * job.kw * job.ci * job.co, threads);
}
