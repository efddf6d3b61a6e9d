/**
 * The ReLU gradient on wasm as one SIMD pass: tfjs computes it as dy * cast(step(x)), three kernels
 * and two temporaries per ReLU (Step, Cast, then wasm's generic broadcasting Multiply), ~4% of a
 * width-1/8 training step. Here each f32x4 of dy is multiplied by 1 where x > 0, by 0 elsewhere and
 * by x itself where x is NaN: the same multiplications by the same factors, so the same bits
 * (test/relu-grad-kernel.test.ts). Registered as Relu's gradient; on another backend, or when
 * switched off, the gradient is tfjs's own formula.
 *
 * reluGrad(dy, x, out, bytes): pointers into the wasm memory; `bytes` a multiple of 16.
 */
import * as tf from './tf.ts';
import { Relu, getGradient, registerGradient, registerKernel, type GradConfig, type KernelBackend, type KernelFunc, type TensorInfo } from './tf.ts';
import { I32, V128, bitselect, fconst, fgt, fmul, fne, forLoop, get, iadd, load, set, store, vand, vzero, type WasmFunction } from './wasm-asm.ts';
import { backendKernel, type HeapBackend } from './backend-kernel.ts';

type ReluGradKernel = (dy: number, x: number, out: number, bytes: number) => void;

function reluGradFunction(): WasmFunction {
  const [DY, X, OUT, BYTES] = [0, 1, 2, 3];
  const I = 4;
  const [XV, ONE] = [5, 6];
  const factor = bitselect(get(XV), vand(get(ONE), fgt(get(XV), vzero())), fne(get(XV), get(XV)));
  const body = [
    ...load(iadd(get(X), get(I))), ...set(XV),
    ...store(iadd(get(OUT), get(I)), fmul(load(iadd(get(DY), get(I))), factor)),
  ];
  return {
    name: 'reluGrad',
    params: [I32, I32, I32, I32],
    locals: [[1, I32], [2, V128]],
    code: [...fconst(1), ...set(ONE), ...forLoop(I, get(BYTES), 16, body)],
  };
}

const wasmReluGrad = backendKernel<ReluGradKernel>(reluGradFunction);

const KERNEL = 'FedsliceReluGrad';

const kernelFunc: KernelFunc = (params) => {
  const { inputs, backend } = params as unknown as { inputs: { dy: TensorInfo; x: TensorInfo }; backend: KernelBackend };
  const { dy, x } = inputs;
  const heap = backend as unknown as HeapBackend;
  const out = heap.makeOutput([...x.shape], 'float32');
  // views are taken after makeOutput: an allocation may grow the heap and detach older views
  const [d, v, o] = [heap.typedArrayFromHeap(dy), heap.typedArrayFromHeap(x), heap.typedArrayFromHeap(out)];
  const n4 = o.length - (o.length % 4);
  wasmReluGrad()!(d.byteOffset, v.byteOffset, o.byteOffset, 4 * n4);
  for (let i = n4; i < o.length; i++) o[i] = d[i] * (Number.isNaN(v[i]) ? v[i] : v[i] > 0 ? 1 : 0);
  return out;
};

let enabled = true;
let original: GradConfig | undefined;

/** Use the SIMD pass (true, the default) or tfjs's formula (false) on wasm, for comparisons. */
export function setSimdReluGrad(on: boolean): void {
  enabled = on;
}

function gradient(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const simd = enabled && tf.getBackend() === 'wasm' && dy.dtype === 'float32' && x.dtype === 'float32' && dy.size === x.size && wasmReluGrad() !== null;
  return simd ? (tf.engine().runKernel(KERNEL, { dy, x }) as tf.Tensor) : tf.mul(dy, tf.cast(tf.step(x), 'float32'));
}

/** Make Relu's gradient the SIMD pass on wasm (idempotent). */
export function registerWasmReluGrad(): void {
  if (original) return;
  original = getGradient(Relu);
  if (!original) return;
  registerKernel({ kernelName: KERNEL, backendName: 'wasm', kernelFunc });
  registerGradient({ kernelName: Relu, inputsToSave: ['x'], gradFunc: (dy, saved) => ({ x: () => gradient(dy as tf.Tensor, saved[0]) }) });
}
