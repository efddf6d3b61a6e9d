/**
 * Convolution gradients as ordinary forward convolutions, registered
 * as the Conv2DBackpropFilter and Conv2DBackpropInput kernels of a backend. wasm ships no filter
 * gradient and a plain-loop input gradient; these run on its fast (XNNPACK) Conv2D instead.
 *
 * For stride 1, NHWC, padding (top, bottom, left, right):
 *   dW = conv2d(x^T [Ci,H,W,B], dy^T [Ho,Wo,B,Co], pad t,b,l,r) = [Ci,kh,kw,Co] -> [kh,kw,Ci,Co]
 *   dx = conv2d(dy, reverse_hw(W)^T [kh,kw,Co,Ci], pad kh-1-t, kh-1-b, kw-1-l, kw-1-r)
 * Other configurations (stride > 1, padding wider than the kernel) go to the backend's own kernel
 * when it has one, else fail with a clear error.
 */
import { zeroPaddedCopy, type HeapBackend } from './backend-kernel.ts';
import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  getKernel,
  registerKernel,
  Reverse,
  Transpose,
  unregisterKernel,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type TensorInfo,
} from './tf.ts';
import { FedsliceError } from '../errors.ts';
import { currentBackend } from './backend.ts';
import { xnnpackConv2D } from './conv-forward-kernel.ts';
import { filterTilesAvailable, runFilterJob } from './simd-conv-filter-module.ts';
import { inputRowsAvailable, runInputJob } from './simd-conv-input-module.ts';

export type ConvGradBackend = 'wasm' | 'cpu';

interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

interface ConvGradAttrs {
  strides: number | [number, number];
  pad: backend_util.PadInfo['type'] | number | backend_util.ExplicitPadding | 'valid' | 'same';
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** The kernels each backend had before ours, so they can be restored and used as a fallback. */
const originals = new Map<ConvGradBackend, Map<string, KernelConfig | undefined>>();

function run(name: string, backendName: string, args: KernelArgs): TensorInfo {
  const k = getKernel(name, backendName);
  if (!k) throw new FedsliceError('FEDSLICE_ERR_KERNEL', `backend ${backendName} has no ${name} kernel, which the conv gradients need; use another backend`);
  return k.kernelFunc(args as Parameters<KernelFunc>[0]) as TensorInfo;
}

function release(backend: KernelBackend, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

/** Stride-1 NHWC padding of the forward convolution, or null when it is not a configuration we handle. */
function stride1Padding(inShape: number[], filterShape: number[], attrs: ConvGradAttrs): backend_util.PadInfo | null {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return null;
  const info = backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad as 'valid',
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return null;
  return info.padInfo;
}

function fallback(kernelName: string, backendName: ConvGradBackend, args: KernelArgs, why: string): TensorInfo {
  const original = originals.get(backendName)?.get(kernelName);
  if (original) return original.kernelFunc(args as Parameters<KernelFunc>[0]) as TensorInfo;
  throw new FedsliceError(
    'FEDSLICE_ERR_KERNEL',
    `${kernelName} on ${backendName} handles stride-1 NHWC convolutions only (${why}); use the cpu backend for this model`,
  );
}

function explicit(t: number, b: number, l: number, r: number): backend_util.ExplicitPadding {
  return [[0, 0], [t, b], [l, r], [0, 0]];
}

/** A forward convolution by the backend's own kernel (on wasm XNNPACK's, also where ours is registered). */
function conv(backendName: string, backend: KernelBackend, x: TensorInfo, filter: TensorInfo, pad: backend_util.ExplicitPadding): TensorInfo {
  const args = {
    inputs: { x, filter },
    backend,
    attrs: { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] } as unknown as NamedAttrMap,
  };
  const own = backendName === 'wasm' ? xnnpackConv2D() : undefined;
  return own ? (own.kernelFunc(args as Parameters<KernelFunc>[0]) as TensorInfo) : run(Conv2D, backendName, args);
}

function transpose(backendName: string, backend: KernelBackend, x: TensorInfo, perm: number[]): TensorInfo {
  return run(Transpose, backendName, { inputs: { x }, backend, attrs: { perm } });
}

let simdFilterEnabled = true;
let filterPixelMajor = process.env.FEDSLICE_FILTER_PIXEL_MAJOR !== 'off';
let convThreaded = true;
let simdInputEnabled = true;

/** Use the wasm SIMD filter gradient where it applies (true, the default) or the transposed convolution (false), for comparisons. */
export function setSimdConvFilter(enabled: boolean): void {
  simdFilterEnabled = enabled;
}

/**
 * Run the SIMD filter gradient over copies of x and dy laid out [H, W, B, C] (true, the default;
 * FEDSLICE_FILTER_PIXEL_MAJOR=off sets false) or over NHWC x and dy as they are (false), for comparisons.
 */
export function setFilterPixelMajor(enabled: boolean): void {
  filterPixelMajor = enabled;
}

/** Use the wasm SIMD input gradient where it applies (true, the default) or XNNPACK's convolution (false), for comparisons. */
export function setSimdConvInput(enabled: boolean): void {
  simdInputEnabled = enabled;
}

/** Run the SIMD filter and input gradients on every wasm thread (true, the default) or on the main thread alone (false), for comparisons. */
export function setThreadedConvKernels(enabled: boolean): void {
  convThreaded = enabled;
}

/**
 * dW straight from x and dy in NHWC with the SIMD tiles of core/compute/simd-conv-filter-module.ts,
 * on every thread the backend has. Null where the tiles cannot run (another backend, output
 * channels not a multiple of 4).
 */
function simdFilterGradient(backend: KernelBackend, x: TensorInfo, dy: TensorInfo, filterShape: number[], pad: backend_util.PadInfo): TensorInfo | null {
  const [batch, h, w, ci] = x.shape;
  const [, ho, wo, co] = dy.shape;
  const [kh, kw] = filterShape;
  if (!simdFilterEnabled || co % 4 !== 0 || x.dtype !== 'float32' || !filterTilesAvailable()) return null;
  const heap = backend as unknown as HeapBackend;
  const pixelMajor = filterPixelMajor;
  const xs = pixelMajor ? transpose('wasm', backend, x, [1, 2, 0, 3]) : x;
  const dys = pixelMajor ? transpose('wasm', backend, dy, [1, 2, 0, 3]) : dy;
  const out = heap.makeOutput([kh, kw, ci, co], 'float32');
  // views are taken after makeOutput: an allocation may grow the heap and detach older views
  const dw = heap.typedArrayFromHeap(out);
  dw.fill(0);
  const job = {
    x: heap.typedArrayFromHeap(xs).byteOffset,
    dy: heap.typedArrayFromHeap(dys).byteOffset,
    dw: dw.byteOffset,
    batch, h, w, ci, ho, wo, co, kh, kw,
    padTop: pad.top,
    padLeft: pad.left,
    pixelMajor,
  };
  runFilterJob(job, convThreaded ? (currentBackend()?.threads ?? 1) : 1);
  if (pixelMajor) release(backend, xs, dys);
  return out;
}

/**
 * dx = conv2d(dy padded by `p` (top, bottom, left, right), `wt` [kh, kw, Co, Ci]) with the SIMD
 * rows of core/compute/simd-conv-input-module.ts over an explicitly zero-padded copy of dy, on every
 * thread the backend has. Null where they cannot run (another backend, input channels not a
 * multiple of 4).
 */
function simdInputGradient(backend: KernelBackend, dy: TensorInfo, wt: TensorInfo, inputShape: number[], p: number[]): TensorInfo | null {
  const [batch, h, w, ci] = inputShape;
  const co = dy.shape[3];
  const [kh, kw] = wt.shape;
  if (!simdInputEnabled || ci % 4 !== 0 || dy.dtype !== 'float32' || !inputRowsAvailable()) return null;
  const heap = backend as unknown as HeapBackend;
  const padded = zeroPaddedCopy(heap, dy, p);
  const out = heap.makeOutput([batch, h, w, ci], 'float32');
  // views are taken after makeOutput: an allocation may grow the heap and detach older views
  const job = { dyPadded: heap.typedArrayFromHeap(padded).byteOffset, wt: heap.typedArrayFromHeap(wt).byteOffset, dx: heap.typedArrayFromHeap(out).byteOffset, batch, h, w, ci, co, kh, kw };
  runInputJob(job, convThreaded ? (currentBackend()?.threads ?? 1) : 1);
  backend.disposeData(padded.dataId);
  return out;
}

function filterGradient(backendName: ConvGradBackend): KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const { x, dy } = args.inputs;
    const attrs = args.attrs as unknown as ConvGradAttrs & { filterShape: number[] };
    const pad = stride1Padding(x.shape, attrs.filterShape, attrs);
    if (!pad) return fallback(Conv2DBackpropFilter, backendName, args, `got strides ${JSON.stringify(attrs.strides)}, format ${attrs.dataFormat}`);
    const { backend } = args;
    const simd = backendName === 'wasm' ? simdFilterGradient(backend, x, dy, attrs.filterShape, pad) : null;
    if (simd) return simd;
    const xT = transpose(backendName, backend, x, [3, 1, 2, 0]); // [Ci, H, W, B]
    const dyT = transpose(backendName, backend, dy, [1, 2, 0, 3]); // [Ho, Wo, B, Co]
    const g = conv(backendName, backend, xT, dyT, explicit(pad.top, pad.bottom, pad.left, pad.right)); // [Ci, kh, kw, Co]
    const out = transpose(backendName, backend, g, [1, 2, 0, 3]);
    release(backend, xT, dyT, g);
    return out;
  };
}

function inputGradient(backendName: ConvGradBackend): KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const { dy, filter } = args.inputs;
    const attrs = args.attrs as unknown as ConvGradAttrs & { inputShape: number[] };
    const pad = stride1Padding(attrs.inputShape, filter.shape, attrs);
    const [kh, kw] = filter.shape;
    if (!pad) return fallback(Conv2DBackpropInput, backendName, args, `got strides ${JSON.stringify(attrs.strides)}, format ${attrs.dataFormat}`);
    const p = [kh - 1 - pad.top, kh - 1 - pad.bottom, kw - 1 - pad.left, kw - 1 - pad.right];
    if (p.some((v) => v < 0)) return fallback(Conv2DBackpropInput, backendName, args, 'padding wider than kernel - 1');
    const { backend } = args;
    const flipped = run(Reverse, backendName, { inputs: { x: filter }, backend, attrs: { dims: [0, 1] } });
    const swapped = transpose(backendName, backend, flipped, [0, 1, 3, 2]); // [kh, kw, Co, Ci]
    const simd = backendName === 'wasm' ? simdInputGradient(backend, dy, swapped, attrs.inputShape, p) : null;
    const out = simd ?? conv(backendName, backend, dy, swapped, explicit(p[0], p[1], p[2], p[3]));
    release(backend, flipped, swapped);
    return out;
  };
}

const KERNELS: Array<[string, (b: ConvGradBackend) => KernelFunc]> = [
  [Conv2DBackpropFilter, filterGradient],
  [Conv2DBackpropInput, inputGradient],
];

/** Replace the backend's conv-gradient kernels with ours (idempotent). */
export function registerConvGradKernels(backendName: ConvGradBackend): void {
  if (originals.has(backendName)) return;
  const saved = new Map<string, KernelConfig | undefined>();
  for (const [name, make] of KERNELS) {
    const existing = getKernel(name, backendName);
    saved.set(name, existing);
    if (existing) unregisterKernel(name, backendName);
    registerKernel({ kernelName: name, backendName, kernelFunc: make(backendName) });
  }
  originals.set(backendName, saved);
}

/** Put the backend's own kernels back (for comparisons and baselines). */
export function unregisterConvGradKernels(backendName: ConvGradBackend): void {
  const saved = originals.get(backendName);
  if (!saved) return;
  for (const [name, original] of saved) {
    unregisterKernel(name, backendName);
    if (original) registerKernel(original);
  }
  originals.delete(backendName);
}

export function convGradKernelsRegistered(backendName: ConvGradBackend): boolean {
  return originals.has(backendName);
}
