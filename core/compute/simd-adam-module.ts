/**
 * A small WebAssembly SIMD module, assembled here byte by byte, that runs one Adam update over
 * float32 arrays in the wasm backend's own memory (it imports that memory). JavaScript has no SIMD
 * and rounds every float32 operation through Math.fround: a JS loop was ~2x slower than tfjs's
 * dozen element-wise kernels; f32x4 operations take four lanes at once with float32 rounding.
 *
 * adam(w, g, m, v, out, bytes, b1, b2, 1-b1, 1-b2, 1-b1^t, 1-b2^t, eps, -lr, decay, useDecay)
 * handles the first `bytes` bytes (a multiple of 16) of each array, in tfjs's order of operations:
 *   g' = useDecay ? g + w*decay : g
 *   m = m*b1 + g'*(1-b1);  v = v*b2 + (g'*g')*(1-b2)
 *   out = ((m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)) * (-lr) + w
 */
import * as tf from '@tensorflow/tfjs';

const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

const str = (s: string) => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

// instructions
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const load = (addr: number[]) => [...addr, ...simd(0x00), 0x00, 0x00]; // v128.load align=1 offset=0
const store = (addr: number[], value: number[]) => [...addr, ...value, ...simd(0x0b), 0x00, 0x00];
const splat = (f32Param: number) => [...get(f32Param), ...simd(0x13)];
const add = (a: number[], b: number[]) => [...a, ...b, ...simd(0xe4)];
const mul = (a: number[], b: number[]) => [...a, ...b, ...simd(0xe6)];
const div = (a: number[], b: number[]) => [...a, ...b, ...simd(0xe7)];
const sqrt = (a: number[]) => [...a, ...simd(0xe3)];
const at = (ptrParam: number, i: number) => [...get(ptrParam), ...get(i), 0x6a]; // i32.add

function adamBody(): number[] {
  // params: 0 w, 1 g, 2 m, 3 v, 4 out, 5 bytes (i32); 6 b1 .. 14 decay (f32); 15 useDecay (i32)
  const [W, G, M, V, OUT, BYTES, USE_DECAY] = [0, 1, 2, 3, 4, 5, 15];
  const f32Params = { b1: 6, b2: 7, omb1: 8, omb2: 9, c1: 10, c2: 11, eps: 12, negLr: 13, decay: 14 };
  // locals: 16 i (i32); 17.. one v128 per constant, then wk, gk, mk, vk
  const I = 16;
  const names = Object.keys(f32Params) as Array<keyof typeof f32Params>;
  const vl = Object.fromEntries(names.map((n, k) => [n, 17 + k])) as Record<keyof typeof f32Params, number>;
  const [WK, GK, MK, VK] = [17 + names.length, 18 + names.length, 19 + names.length, 20 + names.length];
  const locals = vec([[...uleb(1), I32], [...uleb(names.length + 4), V128]]);
  const code = [
    ...names.flatMap((n) => [...splat(f32Params[n]), ...set(vl[n])]),
    0x02, 0x40, // block
    0x03, 0x40, // loop
    ...get(I), ...get(BYTES), 0x4f, 0x0d, 0x01, // br_if 1 when i >= bytes (i32.ge_u)
    ...load(at(W, I)), ...set(WK),
    ...load(at(G, I)), ...set(GK),
    ...get(USE_DECAY), 0x04, V128, // if (result v128)
    ...add(get(GK), mul(get(WK), get(vl.decay))),
    0x05, ...get(GK), 0x0b, // else g end
    ...set(GK),
    ...add(mul(load(at(M, I)), get(vl.b1)), mul(get(GK), get(vl.omb1))), ...set(MK),
    ...add(mul(load(at(V, I)), get(vl.b2)), mul(mul(get(GK), get(GK)), get(vl.omb2))), ...set(VK),
    ...store(at(M, I), get(MK)),
    ...store(at(V, I), get(VK)),
    ...store(at(OUT, I), add(mul(div(div(get(MK), get(vl.c1)), add(sqrt(div(get(VK), get(vl.c2))), get(vl.eps))), get(vl.negLr)), get(WK))),
    ...get(I), 0x41, ...uleb(16), 0x6a, ...set(I), // i += 16 (i32.const 16 fits one byte)
    0x0c, 0x00, // br 0
    0x0b, 0x0b, // end loop, end block
    0x0b, // end function
  ];
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

/** The module's bytes; `shared` must match the imported memory (the threaded build's is shared). */
export function adamModuleBytes(shared: boolean): Uint8Array<ArrayBuffer> {
  const params = [I32, I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32, F32, F32, I32];
  const type = [0x60, ...uleb(params.length), ...params, 0x00];
  // memory limits: shared memories must declare a maximum (65536 pages = 4 GiB)
  const limits = shared ? [0x03, ...uleb(1), ...uleb(65536)] : [0x00, ...uleb(1)];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([type])),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, ...limits]])),
    ...section(3, vec([uleb(0)])),
    ...section(7, vec([[...str('adam'), 0x00, ...uleb(0)]])),
    ...section(10, vec([adamBody()])),
  ]);
}

export type AdamKernel = (
  w: number, g: number, m: number, v: number, out: number, bytes: number,
  b1: number, b2: number, omb1: number, omb2: number, c1: number, c2: number, eps: number, negLr: number, decay: number, useDecay: number,
) => void;

/** The kernel bound to `memory`, or null where this engine cannot compile wasm SIMD. */
function instantiate(memory: WebAssembly.Memory): AdamKernel | null {
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const bytes = adamModuleBytes(shared);
  if (!WebAssembly.validate(bytes)) return null;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const adam = instance.exports.adam;
  return typeof adam === 'function' ? (adam as AdamKernel) : null;
}

interface EmscriptenModule {
  wasmMemory?: WebAssembly.Memory; // the threaded build: memory made in JS and shared with the workers
  asm?: { memory?: WebAssembly.Memory }; // the single-threaded build exports its memory
}

const kernels = new WeakMap<WebAssembly.Memory, AdamKernel | null>();

/** The kernel over the current wasm backend's memory (made once per memory), or null on another backend. */
export function wasmAdamKernel(): AdamKernel | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend: object = tf.backend();
  const module = 'wasm' in backend ? (backend.wasm as EmscriptenModule | undefined) : undefined;
  const memory = module?.wasmMemory ?? module?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  if (!kernels.has(memory)) kernels.set(memory, instantiate(memory));
  return kernels.get(memory) ?? null;
}
