/**
 * One Adam update as a WebAssembly SIMD function over float32 arrays in the wasm backend's own
 * memory (core/compute/wasm-asm.ts). JavaScript has no SIMD and rounds every float32 operation
 * through Math.fround: a JS loop was ~2x slower than tfjs's dozen element-wise kernels; f32x4
 * operations take four lanes at once with float32 rounding, so the results are the same bits.
 *
 * adam(w, g, m, v, out, bytes, b1, b2, 1-b1, 1-b2, 1-b1^t, 1-b2^t, eps, -lr, decay, useDecay)
 * handles the first `bytes` bytes (a multiple of 16) of each array, in tfjs's order of operations:
 *   g' = useDecay ? g + w*decay : g
 *   m = m*b1 + g'*(1-b1);  v = v*b2 + (g'*g')*(1-b2)
 *   out = ((m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)) * (-lr) + w
 * out may be w (Adam updates weights in place): each four lanes of w are read before they are written.
 */
import { F32, I32, V128, fadd, fdiv, fmul, forLoop, fsqrt, get, iadd, load, set, splat, store, type WasmFunction } from './wasm-asm.ts';
import { backendKernel } from './backend-kernel.ts';

export type AdamKernel = (
  w: number, g: number, m: number, v: number, out: number, bytes: number,
  b1: number, b2: number, omb1: number, omb2: number, c1: number, c2: number, eps: number, negLr: number, decay: number, useDecay: number,
) => void;

function adamFunction(): WasmFunction {
  // params: 0 w, 1 g, 2 m, 3 v, 4 out, 5 bytes (i32); 6 b1 .. 14 decay (f32); 15 useDecay (i32)
  const [W, G, M, V, OUT, BYTES, USE_DECAY] = [0, 1, 2, 3, 4, 5, 15];
  const scalars = { b1: 6, b2: 7, omb1: 8, omb2: 9, c1: 10, c2: 11, eps: 12, negLr: 13, decay: 14 };
  const names = Object.keys(scalars) as Array<keyof typeof scalars>;
  // locals: 16 i (i32); 17.. one v128 splat per scalar, then wk, gk, mk, vk
  const I = 16;
  const vl = Object.fromEntries(names.map((n, k) => [n, 17 + k])) as Record<keyof typeof scalars, number>;
  const [WK, GK, MK, VK] = [0, 1, 2, 3].map((k) => 17 + names.length + k);
  const at = (ptr: number) => iadd(get(ptr), get(I));
  const body = [
    ...load(at(W)), ...set(WK),
    ...load(at(G)), ...set(GK),
    ...get(USE_DECAY), 0x04, V128, // if (result v128)
    ...fadd(get(GK), fmul(get(WK), get(vl.decay))),
    0x05, ...get(GK), 0x0b, // else g end
    ...set(GK),
    ...fadd(fmul(load(at(M)), get(vl.b1)), fmul(get(GK), get(vl.omb1))), ...set(MK),
    ...fadd(fmul(load(at(V)), get(vl.b2)), fmul(fmul(get(GK), get(GK)), get(vl.omb2))), ...set(VK),
    ...store(at(M), get(MK)),
    ...store(at(V), get(VK)),
    ...store(at(OUT), fadd(fmul(fdiv(fdiv(get(MK), get(vl.c1)), fadd(fsqrt(fdiv(get(VK), get(vl.c2))), get(vl.eps))), get(vl.negLr)), get(WK))),
  ];
  return {
    name: 'adam',
    params: [I32, I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32, F32, F32, I32],
    locals: [[1, I32], [names.length + 4, V128]],
    code: [...names.flatMap((n) => [...splat(get(scalars[n])), ...set(vl[n])]), ...forLoop(I, get(BYTES), 16, body)],
  };
}

/** The kernel over the current wasm backend's memory (made once per memory), or null on another backend. */
export const wasmAdamKernel = backendKernel<AdamKernel>(adamFunction);
