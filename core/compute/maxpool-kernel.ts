/**
 * MaxPool for the wasm backend's 2x2, stride-2, 'valid' pooling (every pool of the AlexNet) with
 * channels a multiple of 4, as one SIMD pass on the calling thread
 * (core/compute/simd-maxpool-forward-module.ts), XNNPACK's bits. Other configurations go to wasm's
 * own kernel.
 */
import type { HeapBackend } from './backend-kernel.ts';
import { MaxPool, type KernelConfig, type KernelFunc, type TensorInfo } from './tf.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';
import { wasmMaxPoolKernel } from './simd-maxpool-forward-module.ts';
import { is2x2Stride2Valid, type PoolAttrs } from './pool-2x2.ts';

interface Args {
  inputs: { x: TensorInfo };
  backend: HeapBackend;
  attrs: PoolAttrs;
}

const applies = ({ inputs, attrs }: Args): boolean => is2x2Stride2Valid(attrs, inputs.x) && inputs.x.shape[3] % 4 === 0;

function maxPool2x2(own: KernelConfig): KernelFunc {
  return (params) => {
    const args = params as unknown as Args;
    const simd = applies(args) ? wasmMaxPoolKernel() : null;
    if (!simd) return own.kernelFunc(params) as TensorInfo;
    const { backend, inputs } = args;
    const [b, h, w, c] = inputs.x.shape;
    const out = backend.makeOutput([b, h / 2, w / 2, c], 'float32');
    // views are taken after makeOutput: an allocation may grow the heap and detach older views
    const x = backend.typedArrayFromHeap(inputs.x);
    const y = backend.typedArrayFromHeap(out);
    simd(x.byteOffset, y.byteOffset, (b * h) / 2, w / 2, 4 * c, 4 * w * c);
    return out;
  };
}

const override = wasmKernelOverride(MaxPool, maxPool2x2);

/** Replace wasm's MaxPool with the 2x2 SIMD pass (idempotent); FEDSLICE_SIMD_MAXPOOL=off keeps wasm's own. */
export const registerWasmMaxPool = (): void => {
  if (process.env.FEDSLICE_SIMD_MAXPOOL !== 'off') override.register();
};

/** Put wasm's own MaxPool back (for comparisons). */
export const unregisterWasmMaxPool = (): void => override.unregister();
