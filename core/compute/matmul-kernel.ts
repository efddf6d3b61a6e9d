/**
 * BatchMatMul for the wasm backend without its slow transposed paths. tfjs-backend-wasm 4.22 runs
 * a plain product on XNNPACK but a transposed operand through much slower code: for the
 * [32,512] x [512,512] products of a width-1/8 fully connected layer, a^T b took ~20x and a b^T
 * ~4x the time of a b (bench/profile-step.ts), and the gradients of every matMul are exactly
 * those two. Here the transposed operand is transposed explicitly (a cheap copy) and the product
 * runs untransposed: a^T b = (T a) b; a b^T = (T b-side) or (b (T a))^T, whichever copies fewer
 * floats. The untransposed products then run on our SIMD rows (below) where they apply. Batched
 * products (batch > 1) go to the backend's own kernel unchanged.
 */
import type { HeapBackend } from './backend-kernel.ts';
import { _FusedMatMul, BatchMatMul, getKernel, Transpose, type KernelBackend, type KernelConfig, type KernelFunc, type NamedAttrMap, type TensorInfo } from './tf.ts';
import { currentBackend } from './backend.ts';
import { inputRowsAvailable, runInputJob } from './simd-conv-input-module.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';

let simdProducts = true;

/** Run the untransposed products on the SIMD rows where they apply (true, the default) or on XNNPACK (false), for comparisons. */
export function setSimdMatMul(enabled: boolean): void {
  simdProducts = enabled;
}

/**
 * x [M, K] y [K, N] as a 1x1 convolution on the SIMD rows of core/compute/simd-conv-input-module.ts:
 * M pixels of K channels, y the filter. Each output is summed over k in order, one product at a
 * time from +0, as XNNPACK's GEMM sums it, so the bits are the same (test/matmul-kernel.test.ts),
 * without the operator XNNPACK makes (and the weights it packs) for every product whose right
 * operand is new, which in training is every one. The M pixels are laid out as rows of up to 16,
 * the work items shared with the helper threads. Null where the rows do not apply (N not a multiple
 * of 4, not float32, another backend).
 */
function simdProduct(backend: KernelBackend, x: TensorInfo, y: TensorInfo, bias?: TensorInfo, relu = false): TensorInfo | null {
  const [m, k] = x.shape;
  const n = y.shape[1];
  if (!simdProducts || n % 4 !== 0 || x.dtype !== 'float32' || y.dtype !== 'float32' || !inputRowsAvailable()) return null;
  const w = m % 16 === 0 && m >= 32 ? 16 : m % 4 === 0 ? 4 : m;
  const heap = backend as unknown as HeapBackend;
  const out = heap.makeOutput([m, n], 'float32');
  // views are taken after makeOutput: an allocation may grow the heap and detach older views
  const job = {
    dyPadded: heap.typedArrayFromHeap(x).byteOffset,
    wt: heap.typedArrayFromHeap(y).byteOffset,
    dx: heap.typedArrayFromHeap(out).byteOffset,
    batch: 1, h: m / w, w, ci: n, co: k, kh: 1, kw: 1,
    bias: bias ? heap.typedArrayFromHeap(bias).byteOffset : 0,
    relu,
  };
  runInputJob(job, currentBackend()?.threads ?? 1);
  return out;
}

interface Args {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: KernelBackend;
  attrs: { transposeA: boolean; transposeB: boolean };
}

const view = (t: TensorInfo, shape: number[]): TensorInfo => ({ dataId: t.dataId, shape, dtype: t.dtype });
const batchOf = (t: TensorInfo) => t.shape.slice(0, -2).reduce((p, d) => p * d, 1);

function call(kernel: KernelConfig, backend: KernelBackend, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo {
  return kernel.kernelFunc({ inputs, backend, attrs } as Parameters<KernelFunc>[0]) as TensorInfo;
}

function makeKernel(own: KernelConfig, transpose: KernelConfig): KernelFunc {
  return (params) => {
    const { inputs, backend, attrs } = params as unknown as Args;
    const { a, b } = inputs;
    const { transposeA, transposeB } = attrs;
    if (batchOf(a) !== 1 || batchOf(b) !== 1 || a.dtype !== 'float32') {
      return call(own, backend, inputs as unknown as Record<string, TensorInfo>, attrs as unknown as NamedAttrMap);
    }
    const [ar, ac] = a.shape.slice(-2);
    const [br, bc] = b.shape.slice(-2);
    const outer = (a.shape.length >= b.shape.length ? a : b).shape.slice(0, -2);
    const temps: TensorInfo[] = [];
    const T = (x: TensorInfo): TensorInfo => {
      const t = call(transpose, backend, { x }, { perm: [1, 0] } as unknown as NamedAttrMap);
      temps.push(t);
      return t;
    };
    const mm = (x: TensorInfo, y: TensorInfo): TensorInfo =>
      simdProduct(backend, x, y) ?? call(own, backend, { a: x, b: y }, { transposeA: false, transposeB: false } as unknown as NamedAttrMap);
    const a2 = view(a, [ar, ac]);
    const b2 = view(b, [br, bc]);
    // the left operand as [M, K]
    const left = () => (transposeA ? T(a2) : a2);
    const [m, k] = transposeA ? [ac, ar] : [ar, ac];
    let out: TensorInfo;
    if (!transposeB) {
      out = mm(left(), b2);
    } else if (m * k + m * br < k * br) {
      // b is [N, K]: a b^T = (b a^T)^T copies a and the output instead of the larger b
      const leftT = transposeA ? a2 : T(a2);
      const prod = mm(b2, leftT);
      temps.push(prod);
      out = call(transpose, backend, { x: prod }, { perm: [1, 0] } as unknown as NamedAttrMap);
    } else {
      out = mm(left(), T(b2));
    }
    for (const t of temps) backend.disposeData(t.dataId);
    out.shape = [...outer, m, transposeB ? br : bc];
    return out;
  };
}

interface FusedArgs {
  inputs: { a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
  backend: KernelBackend;
  attrs: { transposeA: boolean; transposeB: boolean; activation?: string };
}

/**
 * _FusedMatMul (a product with a bias and a linear or ReLU activation, as the last dense layer and
 * inference run it) of untransposed 2-D operands on the SIMD rows, each sum started at the bias as
 * XNNPACK's fully connected operator starts it, so the bits are the same; wasm's own otherwise. wasm's
 * own runs XNNPACK on the pthread pool, whose worker then spins into the kernels that follow.
 */
function fusedProduct(own: KernelConfig): KernelFunc {
  return (params) => {
    const { inputs, backend, attrs } = params as unknown as FusedArgs;
    const { a, b, bias } = inputs;
    const activation = attrs.activation ?? 'linear';
    const plain = batchOf(a) === 1 && batchOf(b) === 1 && !attrs.transposeA && !attrs.transposeB && !inputs.preluActivationWeights;
    const [m, k] = a.shape.slice(-2);
    const n = b.shape[b.shape.length - 1];
    const biasFits = !bias || (bias.dtype === 'float32' && bias.shape.length === 1 && bias.shape[0] === n);
    const fits = fusedMatMulEnabled && plain && biasFits && (activation === 'linear' || activation === 'relu');
    const out = fits ? simdProduct(backend, view(a, [m, k]), view(b, [k, n]), bias, activation === 'relu') : null;
    if (!out) return own.kernelFunc(params) as TensorInfo;
    out.shape = [...(a.shape.length >= b.shape.length ? a : b).shape.slice(0, -2), m, n];
    return out;
  };
}

let fusedMatMulEnabled = process.env.FEDSLICE_SIMD_FUSED_MATMUL !== 'off';

/** Run _FusedMatMul on the SIMD rows where it applies (true, the default; FEDSLICE_SIMD_FUSED_MATMUL=off sets false) or on XNNPACK (false), for comparisons. */
export function setSimdFusedMatMul(enabled: boolean): void {
  fusedMatMulEnabled = enabled;
}

const fusedOverride = wasmKernelOverride(_FusedMatMul, fusedProduct);

const override = wasmKernelOverride(BatchMatMul, (own) => {
  const transpose = getKernel(Transpose, 'wasm');
  return transpose ? makeKernel(own, transpose) : null;
});

/** Replace wasm's BatchMatMul and _FusedMatMul with the versions above (idempotent). */
export const registerWasmMatMul = (): void => {
  override.register();
  fusedOverride.register();
};

/** Put wasm's own BatchMatMul and _FusedMatMul back (for comparisons). */
export const unregisterWasmMatMul = (): void => {
  override.unregister();
  fusedOverride.unregister();
};
