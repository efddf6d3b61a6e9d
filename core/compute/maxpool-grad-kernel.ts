/**
 * MaxPoolGrad for the wasm backend's 2x2, stride-2, 'valid' pooling (every pool of the AlexNet),
 * written over the wasm heap directly. wasm's own kernel walks a general window per output and
 * took ~7% of a width-1/8 training step (bench/profile-step.ts). Each input position gets the
 * upstream gradient of its window if it is the window's first maximum in row-major order (the
 * rule tfjs's kernels use), else 0. Other configurations go to wasm's own kernel. Where the channels
 * are a multiple of 4 the loop runs as a wasm SIMD function (core/compute/simd-maxpool-module.ts,
 * 4-6x less CPU than this JS loop, the same bits).
 */
import type { HeapBackend } from './backend-kernel.ts';
import { MaxPoolGrad, type KernelConfig, type KernelFunc, type TensorInfo } from './tf.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';
import { wasmMaxPoolGradKernel } from './simd-maxpool-module.ts';
import { is2x2Stride2Valid, type PoolAttrs } from './pool-2x2.ts';

interface Args {
  inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
  backend: HeapBackend;
  attrs: PoolAttrs;
}

let simdEnabled = true;

/** Run the JS loop even where the SIMD function could (false), for comparisons; true by default. */
export function setSimdMaxPoolGrad(enabled: boolean): void {
  simdEnabled = enabled;
}

/** The pool our kernels cover, with dy the shape of its output. */
function applies({ inputs, attrs }: Args): boolean {
  const [b, h, w, c] = inputs.input.shape;
  const dy = inputs.dy.shape;
  return is2x2Stride2Valid(attrs, inputs.input) && dy[0] === b && dy[1] === h / 2 && dy[2] === w / 2 && dy[3] === c;
}

function maxPoolGrad2x2(own: KernelConfig): KernelFunc {
  return (params) => {
    const args = params as unknown as Args;
    if (!applies(args)) return own.kernelFunc(params) as TensorInfo;
    const { backend, inputs } = args;
    const [b, h, w, c] = inputs.input.shape;
    const out = backend.makeOutput([b, h, w, c], 'float32');
    // views are taken after makeOutput: an allocation may grow the heap and detach older views
    const x = backend.typedArrayFromHeap(inputs.input);
    const dy = backend.typedArrayFromHeap(inputs.dy);
    const dx = backend.typedArrayFromHeap(out);
    const simd = simdEnabled && c % 4 === 0 ? wasmMaxPoolGradKernel() : null;
    if (simd) {
      simd(x.byteOffset, dy.byteOffset, dx.byteOffset, (b * h) / 2, w / 2, 4 * c, 4 * w * c);
      return out;
    }
    const ho = h / 2;
    const wo = w / 2;
    const row = w * c;
    for (let n = 0; n < b; n++) {
      for (let i = 0; i < ho; i++) {
        const top = (n * h + 2 * i) * row;
        const bottom = top + row;
        const g = (n * ho + i) * wo * c;
        for (let j = 0; j < wo; j++) {
          for (let k = 0; k < c; k++) {
            const p00 = top + 2 * j * c + k;
            const p01 = p00 + c;
            const p10 = bottom + 2 * j * c + k;
            const p11 = p10 + c;
            let best = p00;
            if (x[p01] > x[best]) best = p01;
            if (x[p10] > x[best]) best = p10;
            if (x[p11] > x[best]) best = p11;
            dx[p00] = 0;
            dx[p01] = 0;
            dx[p10] = 0;
            dx[p11] = 0;
            dx[best] = dy[g + j * c + k];
          }
        }
      }
    }
    return out;
  };
}

const override = wasmKernelOverride(MaxPoolGrad, maxPoolGrad2x2);

/** Replace wasm's MaxPoolGrad with the 2x2 version above (idempotent). */
export const registerWasmMaxPoolGrad = (): void => override.register();

/** Put wasm's own MaxPoolGrad back (for comparisons). */
export const unregisterWasmMaxPoolGrad = (): void => override.unregister();
