/**
 * A stride-1 convolution over an explicitly zero-padded input as WebAssembly SIMD functions over the
 * wasm backend's memory (core/compute/wasm-asm.ts), written out so that no XNNPACK operator is made
 * per call. It runs the convolution input gradient, dx = conv2d(dy zero-padded, W flipped and
 * transposed to [kh, kw, Co, Ci]), the convolution tfjs runs for it, and the forward convolution
 * itself (core/compute/conv-forward-kernel.ts: x zero-padded, W as it is); the names below are the
 * input gradient's. Each output value is summed as XNNPACK sums it: over (fy, fx) in row-major order,
 * then the Co channels, one product at a time into one accumulator started at +0 (f32x4 mul, then
 * add), so the bits are the same. The zero padding adds +-0 products, which leave every such sum
 * unchanged (a sum started at +0 never becomes -0).
 *
 * row(dy, wt, dx, groups, kh, kw, co, dyRow, wtStep, dxPixel, bias, relu): one output row's
 * `groups` blocks of `npix` pixels, for 4 x `nv` input channels. `dy` points at the padded dy's row that the output
 * row's first window starts on, `wt` at the flipped filter's first value for this channel tile,
 * `dx` at the output row's first value for this tile; `dyRow` is a padded row's bytes, `wtStep`
 * the filter's bytes from one Co channel to the next (4 Ci), `dxPixel` the bytes of one pixel of dx;
 * `bias` (0: none) points at the values the tile's sums start from instead of +0, and `relu` (1)
 * clamps them as XNNPACK's fused ReLU does (pmax(0, sum)): a forward convolution with its bias and
 * ReLU fused, as inference runs it.
 */
import { threadedKernel } from './wasm-helper-threads.ts';
import { I32, V128, fadd, fmul, forLoop, fpmax, get, iadd, ifElse, imul, i32, loadAt, loadSplatAt, set, storeAt, tileFunctions, vzero, type WasmFunction } from './wasm-asm.ts';

export const MAX_PIXELS = 4;
export const MAX_VECTORS = 2;

function rowFunction(npix: number, nv: number): WasmFunction {
  const [DY, WT, DX, GROUPS, KH, KW, CO, DYROW, WTSTEP, DXPIX, BIAS, RELU] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const [G, FY, FX, C, DP, WP, COB] = [12, 13, 14, 15, 16, 17, 18];
  // byte offsets of pixels 1 .. npix - 1 of a group from its first, computed once per call
  const PIXOFF = (p: number) => 18 + p;
  const firstV = 19 + npix - 1;
  const acc = (p: number, j: number) => firstV + p * nv + j;
  const wv = (j: number) => firstV + npix * nv + j;
  const S = firstV + npix * nv + nv;
  const inner: number[] = [];
  for (let j = 0; j < nv; j++) inner.push(...loadAt(get(WP), 16 * j), ...set(wv(j)));
  for (let p = 0; p < npix; p++) {
    inner.push(...loadSplatAt(p === 0 ? get(DP) : iadd(get(DP), get(PIXOFF(p))), 0), ...set(S));
    for (let j = 0; j < nv; j++) inner.push(...fadd(get(acc(p, j)), fmul(get(S), get(wv(j)))), ...set(acc(p, j)));
  }
  inner.push(...iadd(get(DP), i32(4)), ...set(DP), ...iadd(get(WP), get(WTSTEP)), ...set(WP));
  const perFx = [
    // the window's (fy, fx) value of the group's first pixel
    ...iadd(get(DY), iadd(imul(get(FY), get(DYROW)), imul(iadd(imul(get(G), i32(npix)), get(FX)), get(COB)))), ...set(DP),
    ...forLoop(C, get(CO), 1, inner),
  ];
  const zero: number[] = [];
  const fromBias: number[] = [];
  const relu: number[] = [];
  const out: number[] = [];
  const pixel = (p: number) => iadd(get(DX), imul(iadd(imul(get(G), i32(npix)), i32(p)), get(DXPIX)));
  for (let p = 0; p < npix; p++) {
    for (let j = 0; j < nv; j++) {
      zero.push(...vzero(), ...set(acc(p, j)));
      fromBias.push(...loadAt(get(BIAS), 16 * j), ...set(acc(p, j)));
      relu.push(...fpmax(vzero(), get(acc(p, j))), ...set(acc(p, j)));
      out.push(...storeAt(pixel(p), 16 * j, get(acc(p, j))));
    }
  }
  // XNNPACK starts each sum at the bias (+0 without one) and clamps a ReLU with pmax(0, sum)
  const init = [...get(BIAS), ...ifElse(fromBias, zero)];
  const clamp = [...get(RELU), ...ifElse(relu, [])];
  const pixelOffsets: number[] = [];
  for (let p = 1; p < npix; p++) pixelOffsets.push(...imul(i32(p), get(COB)), ...set(PIXOFF(p)));
  const perGroup = [...init, ...get(WT), ...set(WP), ...forLoop(FY, get(KH), 1, forLoop(FX, get(KW), 1, perFx)), ...clamp, ...out];
  return {
    name: `inputRow${npix}x${nv}`,
    params: Array<number>(12).fill(I32),
    locals: [[7 + npix - 1, I32], [npix * nv + nv + 1, V128]],
    code: [...imul(get(CO), i32(4)), ...set(COB), ...pixelOffsets, ...forLoop(G, get(GROUPS), 1, perGroup)],
  };
}

/** Every row function, pixels major: index (npix - 1) * MAX_VECTORS + nv - 1. */
const rowFunctions = () => tileFunctions(MAX_PIXELS, MAX_VECTORS, rowFunction);

/** An input-gradient job: pointers (bytes) and sizes; dy is already zero-padded to [batch, h + kh - 1, w + kw - 1, co]. */
export interface InputJob {
  dyPadded: number;
  wt: number;
  dx: number;
  batch: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  kh: number;
  kw: number;
  /** Where each output starts (ci values), as XNNPACK's bias; absent: +0. */
  bias?: number;
  /** Clamp the outputs below at 0 as XNNPACK's ReLU does. */
  relu?: boolean;
}

const jobParams = (j: InputJob): number[] =>
  [j.dyPadded, j.wt, j.dx, j.batch, j.h, j.w, j.ci, j.co, j.kh, j.kw, MAX_PIXELS, MAX_VECTORS, j.bias ?? 0, j.relu ? 1 : 0];

/**
 * Output rows [from, to) (row = b * h + y) of a job (parameters in InputJob's order, then the tile
 * maxima), every channel tile. Self-contained (helper threads run its source text).
 */
export function runInputRows(rows: Array<(...args: number[]) => void>, p: ArrayLike<number>, from: number, to: number): void {
  const dyPadded = p[0], wt = p[1], dx = p[2], h = p[4], w = p[5], ci = p[6], co = p[7], kh = p[8], kw = p[9], maxPix = p[10], maxV = p[11];
  const bias = p[12], relu = p[13];
  const hp = h + kh - 1;
  const wp = w + kw - 1;
  const groups = Math.floor(w / maxPix);
  const rest = w - groups * maxPix;
  for (let r = from; r < to; r++) {
    const b = Math.floor(r / h);
    const y = r - b * h;
    const dyRow = dyPadded + 4 * (b * hp + y) * wp * co;
    const dxRow = dx + 4 * r * w * ci;
    for (let c0 = 0; c0 < ci; c0 += 4 * maxV) {
      const nv = Math.min(maxV, (ci - c0) / 4);
      const b0 = bias === 0 ? 0 : bias + 4 * c0;
      if (groups > 0) rows[(maxPix - 1) * maxV + nv - 1](dyRow, wt + 4 * c0, dxRow + 4 * c0, groups, kh, kw, co, 4 * wp * co, 4 * ci, 4 * ci, b0, relu);
      if (rest > 0) {
        const at = groups * maxPix;
        rows[(rest - 1) * maxV + nv - 1](dyRow + 4 * at * co, wt + 4 * c0, dxRow + 4 * (at * ci + c0), 1, kh, kw, co, 4 * wp * co, 4 * ci, 4 * ci, b0, relu);
      }
    }
  }
}

const kernel = threadedKernel(rowFunctions, runInputRows);

/** Whether the functions can run over the current backend's memory (false on another backend). */
export const inputRowsAvailable = kernel.available;

/** Helper threads ready to take work (0 before the first threaded job). */
export const inputHelpersReady = kernel.helpersReady;

/** Run a job over the current wasm memory on `threads` threads; false on another backend (nothing was written). */
export function runInputJob(job: InputJob, threads: number): boolean {
  return kernel.run(jobParams(job), job.batch * job.h, job.batch * job.h * job.w * job.kh * job.kw * job.ci * job.co, threads);
}
