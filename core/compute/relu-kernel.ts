/**
 * Relu for the wasm backend as one f32x4 pass, max(x, 0) lane by lane (NaN stays NaN, -0 becomes
 * +0), which is what wasm's own kernel gives, bit for bit (test/relu-grad-kernel.test.ts), without
 * its per-call set-up. Other dtypes and sizes not a multiple of 4 go to wasm's own kernel.
 *
 * relu(x, out, bytes): pointers into the wasm memory; `bytes` a multiple of 16.
 */
import { Relu, util, type KernelConfig, type KernelFunc, type TensorInfo } from './tf.ts';
import { backendKernel, type HeapBackend } from './backend-kernel.ts';
import { I32, fmax, forLoop, get, iadd, load, store, vzero, type WasmFunction } from './wasm-asm.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';

type ReluKernel = (x: number, out: number, bytes: number) => void;

function reluFunction(): WasmFunction {
  const [X, OUT, BYTES, I] = [0, 1, 2, 3];
  return {
    name: 'relu',
    params: [I32, I32, I32],
    locals: [[1, I32]],
    code: forLoop(I, get(BYTES), 16, store(iadd(get(OUT), get(I)), fmax(load(iadd(get(X), get(I))), vzero()))),
  };
}

const wasmRelu = backendKernel<ReluKernel>(reluFunction);

function simdRelu(own: KernelConfig): KernelFunc {
  return (params) => {
    const { inputs, backend } = params as unknown as { inputs: { x: TensorInfo }; backend: HeapBackend };
    const { x } = inputs;
    const size = util.sizeFromShape(x.shape);
    const kernel = x.dtype === 'float32' && size % 4 === 0 && size > 0 ? wasmRelu() : null;
    if (!kernel) return own.kernelFunc(params) as TensorInfo;
    const out = backend.makeOutput([...x.shape], 'float32');
    // views after makeOutput: an allocation may grow the heap and detach older views
    kernel(backend.typedArrayFromHeap(x).byteOffset, backend.typedArrayFromHeap(out).byteOffset, 4 * size);
    return out;
  };
}

const override = wasmKernelOverride(Relu, simdRelu);

/** Replace wasm's Relu with the pass above (idempotent). */
export const registerWasmRelu = (): void => override.register();

/** Put wasm's own Relu back (for comparisons). */
export const unregisterWasmRelu = (): void => override.unregister();
