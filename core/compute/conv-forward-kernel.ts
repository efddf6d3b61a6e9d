/**
 * Conv2D for the wasm backend as the SIMD rows of core/compute/simd-conv-input-module.ts (a stride-1
 * convolution over a zero-padded input, the module the input gradient runs on) instead of XNNPACK:
 * x is copied once into a zero-padded buffer and each output is summed over (ky, kx) in row-major
 * order, then the input channels, one product at a time from +0, which is how XNNPACK's
 * convolution sums it, so the results are bit for bit wasm's own (test/conv-grad.test.ts). It shares
 * the rows with the helper threads, and no XNNPACK operator is made and no filter packed per call
 * (the weights change every step, so tfjs packed them afresh for every forward pass).
 *
 * FusedConv2D (inference: tfjs fuses the bias and the activation only while no gradient is recorded)
 * runs the same way, each sum started at the bias and a ReLU clamped as XNNPACK clamps it.
 *
 * Applies to stride-1, undilated NHWC convolutions with output channels a multiple of 4 on float32,
 * with a linear or ReLU activation; anything else goes to wasm's own kernel.
 */
import { zeroPaddedCopy, type HeapBackend } from './backend-kernel.ts';
import { backend_util, Conv2D, FusedConv2D, getKernel, type KernelBackend, type KernelConfig, type KernelFunc, type TensorInfo } from './tf.ts';
import { currentBackend } from './backend.ts';
import { inputRowsAvailable, runInputJob } from './simd-conv-input-module.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';

interface Args {
  inputs: { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
  backend: KernelBackend;
  attrs: {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dataFormat?: 'NHWC' | 'NCHW';
    dilations?: number | [number, number];
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    /** FusedConv2D's */
    activation?: string;
  };
}

let threaded = true;

/** Share the forward convolution with the helper threads (true, the default) or run it on the main thread alone, for comparisons. */
export function setThreadedConvForward(enabled: boolean): void {
  threaded = enabled;
}

/** Conv2D, and FusedConv2D with a bias (added first, as XNNPACK does) and a linear or ReLU activation. */
function simdConv(own: KernelConfig): KernelFunc {
  return (params) => {
    const { inputs, backend, attrs } = params as unknown as Args;
    const { x, filter, bias } = inputs;
    const fallback = () => own.kernelFunc(params) as TensorInfo;
    const activation = attrs.activation ?? 'linear';
    if (inputs.preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return fallback();
    if (bias && (bias.dtype !== 'float32' || bias.shape.reduce((a, b) => a * b, 1) !== filter.shape[3])) return fallback();
    if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || x.dtype !== 'float32' || filter.dtype !== 'float32' || !inputRowsAvailable()) return fallback();
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations ?? 1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      'channelsLast',
    );
    const { padInfo } = info;
    const pads = [padInfo.top, padInfo.bottom, padInfo.left, padInfo.right];
    if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return fallback();
    if (info.outChannels % 4 !== 0 || pads.some((p) => p < 0)) return fallback();
    const [batch, , , ci] = x.shape;
    const { outHeight: ho, outWidth: wo, outChannels: co, filterHeight: kh, filterWidth: kw } = info;
    const heap = backend as unknown as HeapBackend;
    const padded = pads.every((p) => p === 0) ? null : zeroPaddedCopy(heap, x, pads);
    const out = heap.makeOutput([batch, ho, wo, co], 'float32');
    // views are taken after makeOutput: an allocation may grow the heap and detach older views
    const job = {
      dyPadded: heap.typedArrayFromHeap(padded ?? x).byteOffset,
      wt: heap.typedArrayFromHeap(filter).byteOffset,
      dx: heap.typedArrayFromHeap(out).byteOffset,
      batch, h: ho, w: wo, ci: co, co: ci, kh, kw,
      bias: bias ? heap.typedArrayFromHeap(bias).byteOffset : 0,
      relu: activation === 'relu',
    };
    runInputJob(job, threaded ? (currentBackend()?.threads ?? 1) : 1);
    if (padded) backend.disposeData(padded.dataId);
    return out;
  };
}

const override = wasmKernelOverride(Conv2D, simdConv);
const fused = wasmKernelOverride(FusedConv2D, simdConv);

/** Replace wasm's Conv2D and FusedConv2D with the SIMD rows above (idempotent). */
export function registerWasmConv2D(): void {
  override.register();
  fused.register();
}

/** Put wasm's own Conv2D and FusedConv2D back (for comparisons). */
export function unregisterWasmConv2D(): void {
  override.unregister();
  fused.unregister();
}

/** Whether ours are wasm's Conv2D and FusedConv2D now. */
export const wasmConv2DRegistered = (): boolean => getKernel(Conv2D, 'wasm') !== override.own() && getKernel(FusedConv2D, 'wasm') !== fused.own();

/** wasm's own (XNNPACK) Conv2D, whether ours is registered or not. */
export const xnnpackConv2D = (): KernelConfig | undefined => override.own();
