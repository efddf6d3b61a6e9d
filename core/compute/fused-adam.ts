/**
 * Adam with L2 weight decay added to the gradient, as training uses it: on the wasm backend one
 * SIMD pass per parameter tensor (core/compute/simd-adam-module.ts), elsewhere tfjs's optimizer.
 *
 * tfjs's Adam runs 10 element-wise kernels per parameter tensor (plus 2 for the decay), each
 * dispatched from JS, allocating its output and waking the wasm thread pool: ~240 of a width-1/8
 * step's ~600 kernels and ~9% of its time (bench/README.md). The fused pass does the same float32
 * operations in the same order, each rounded to float32 (f32x4 lanes; in the JS tail, Math.fround
 * of the double result of one +, *, / or sqrt is the float32 result), so its updates are bit for
 * bit tfjs's (test/fused-adam.test.ts).
 *
 * The new values go into a fresh tensor that the variable is assigned, never into the variable's
 * own memory: wasm caches XNNPACK operators with packed weights by the weight tensor's data id.
 */
import * as tf from '@tensorflow/tfjs';
import { instantiateAdam, type AdamKernel } from './simd-adam-module.ts';

export interface AdamHyper {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** L2 decay: the gradient becomes g + weightDecay * w before the update; 0 for none. */
  weightDecay: number;
}

export interface AdamStepper {
  /** 'simd': the fused wasm kernel; 'tfjs': tfjs's optimizer. */
  readonly kind: 'simd' | 'tfjs';
  /** One update of every variable from its gradient (same order as the variables). */
  apply(vars: tf.Variable[], grads: tf.Tensor[]): void;
  dispose(): void;
}

interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  dataIdMap: { get(dataId: tf.TensorInfo['dataId']): { memoryOffset: number } | undefined };
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
}

const f = Math.fround;

/** tfjs's optimizer, the decay added with two more kernels. */
function tfjsAdam(h: AdamHyper): AdamStepper {
  const optimizer = tf.train.adam(h.learningRate, h.beta1, h.beta2, h.epsilon);
  return {
    kind: 'tfjs',
    apply(vars, grads) {
      tf.tidy(() => {
        const decayed = vars.map((v, i) => ({ name: v.name, tensor: h.weightDecay > 0 ? tf.add(grads[i], tf.mul(v, h.weightDecay)) : grads[i] }));
        optimizer.applyGradients(decayed);
      });
    },
    dispose: () => optimizer.dispose(),
  };
}

interface Constants {
  b1: number; b2: number; omb1: number; omb2: number; c1: number; c2: number; eps: number; negLr: number; decay: number; useDecay: boolean;
}

/** The same update in JS for elements [from, w.length): the tail the 4-lane kernel leaves. */
function adamTail(from: number, w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, next: Float32Array, k: Constants): void {
  for (let i = from; i < w.length; i++) {
    const wi = w[i];
    const gi = k.useDecay ? f(g[i] + f(wi * k.decay)) : g[i];
    const mi = f(f(m[i] * k.b1) + f(gi * k.omb1));
    const vi = f(f(v[i] * k.b2) + f(f(gi * gi) * k.omb2));
    m[i] = mi;
    v[i] = vi;
    const step = f(f(mi / k.c1) / f(f(Math.sqrt(f(vi / k.c2))) + k.eps));
    next[i] = f(f(step * k.negLr) + wi);
  }
}

function fusedAdam(h: AdamHyper, backend: WasmHeapBackend, kernel: AdamKernel): AdamStepper {
  // each constant as tfjs makes it: a float32 scalar of the double expression
  const b1 = f(h.beta1), b2 = f(h.beta2);
  const base = { b1, b2, omb1: f(1 - h.beta1), omb2: f(1 - h.beta2), eps: f(h.epsilon), negLr: f(-h.learningRate), decay: f(h.weightDecay), useDecay: h.weightDecay > 0 };
  let acc1 = b1, acc2 = b2; // beta^t, float32 like tfjs's accBeta variables
  // engine tensors (kept out of any tidy), so tf.memory() counts them as it counts tfjs's moments
  const moments: Array<{ m: tf.Tensor; v: tf.Tensor }> = [];
  const offset = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
  return {
    kind: 'simd',
    apply(vars, grads) {
      const k: Constants = { ...base, c1: f(1 - acc1), c2: f(1 - acc2) };
      vars.forEach((variable, i) => {
        moments[i] ??= { m: tf.keep(tf.zeros([variable.size])), v: tf.keep(tf.zeros([variable.size])) };
        const { m, v } = moments[i];
        const out = backend.makeOutput([...variable.shape], 'float32');
        const lanes = variable.size - (variable.size % 4);
        kernel(offset(variable), offset(grads[i]), offset(m), offset(v), offset(out), 4 * lanes,
          k.b1, k.b2, k.omb1, k.omb2, k.c1, k.c2, k.eps, k.negLr, k.decay, k.useDecay ? 1 : 0);
        if (lanes < variable.size) {
          const heap = (t: tf.TensorInfo) => backend.typedArrayFromHeap(t);
          adamTail(lanes, heap(variable), heap(grads[i]), heap(m), heap(v), heap(out), k);
        }
        const t = tf.engine().makeTensorFromTensorInfo(out);
        variable.assign(t);
        t.dispose();
      });
      acc1 = f(acc1 * b1);
      acc2 = f(acc2 * b2);
    },
    dispose() {
      tf.dispose(moments.flatMap(({ m, v }) => [m, v]));
      moments.length = 0;
    },
  };
}

function isWasmHeapBackend(b: unknown): b is WasmHeapBackend {
  const w = b as Partial<WasmHeapBackend>;
  return typeof w.typedArrayFromHeap === 'function' && typeof w.makeOutput === 'function' && w.dataIdMap !== undefined && w.wasm !== undefined;
}

/** The SIMD kernel bound to the wasm backend's memory, made once per memory. */
const kernels = new WeakMap<WebAssembly.Memory, AdamKernel | null>();
function kernelFor(backend: WasmHeapBackend): AdamKernel | null {
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!memory) return null;
  if (!kernels.has(memory)) kernels.set(memory, instantiateAdam(memory));
  return kernels.get(memory) ?? null;
}

let fusedEnabled = true;

/** Use tfjs's optimizer on wasm too (false), for comparisons and baselines; true by default. */
export function setFusedAdam(enabled: boolean): void {
  fusedEnabled = enabled;
}

/** The Adam of the current backend: fused on wasm, tfjs's elsewhere. */
export function createAdam(h: AdamHyper): AdamStepper {
  const backend = tf.backend();
  if (!fusedEnabled || tf.getBackend() !== 'wasm' || !isWasmHeapBackend(backend)) return tfjsAdam(h);
  const kernel = kernelFor(backend);
  return kernel ? fusedAdam(h, backend, kernel) : tfjsAdam(h);
}
