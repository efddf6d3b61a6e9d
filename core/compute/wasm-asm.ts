/**
 * Just enough of the WebAssembly binary format to write small SIMD kernels by hand: a module that
 * imports a memory (the wasm backend's, core/compute/backend-kernel.ts, or a window of its own)
 * and exports functions over pointers into it. Each helper returns the bytes of one instruction
 * with its operands' bytes before it (stack order). No tfjs here: the wire uses it too.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
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

export type Code = number[];
const simd = (op: number) => [0xfd, ...uleb(op)];

export const get = (i: number): Code => [0x20, ...uleb(i)];
export const set = (i: number): Code => [0x21, ...uleb(i)];
export const i32 = (n: number): Code => [0x41, ...sleb(n)];
export const iadd = (a: Code, b: Code): Code => [...a, ...b, 0x6a];
export const imul = (a: Code, b: Code): Code => [...a, ...b, 0x6c];
/** v128.load / v128.store at an address (alignment hint 1, offset 0). */
export const load = (addr: Code): Code => [...addr, ...simd(0x00), 0x00, 0x00];
export const store = (addr: Code, value: Code): Code => [...addr, ...value, ...simd(0x0b), 0x00, 0x00];
/** v128.load / v128.store at an address plus a constant byte offset. */
export const loadAt = (addr: Code, offset: number): Code => [...addr, ...simd(0x00), 0x00, ...uleb(offset)];
export const storeAt = (addr: Code, offset: number, value: Code): Code => [...addr, ...value, ...simd(0x0b), 0x00, ...uleb(offset)];
/** v128.load32_splat: one f32 at an address plus a constant byte offset, in all four lanes. */
export const loadSplatAt = (addr: Code, offset: number): Code => [...addr, ...simd(0x09), 0x00, ...uleb(offset)];
export const splat = (f: Code): Code => [...f, ...simd(0x13)];
/** v128.const of sixteen zero bytes (+0 in every f32 lane). */
export const vzero = (): Code => [...simd(0x0c), ...Array<number>(16).fill(0)];
/** v128.const with `x`, rounded to float32, in every f32 lane. */
export const fconst = (x: number): Code => [...simd(0x0c), ...Array.from({ length: 4 }, () => [...new Uint8Array(Float32Array.of(x).buffer)]).flat()];
export const fadd = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xe4)];
export const fmul = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xe6)];
export const fdiv = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xe7)];
export const fsqrt = (a: Code): Code => [...a, ...simd(0xe3)];
export const fsub = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xe5)];
/** Scalar f32: load / store at an address (alignment hint 4, offset 0), add, subtract, multiply. */
export const f32load = (addr: Code): Code => [...addr, 0x2a, 0x02, 0x00];
export const f32store = (addr: Code, value: Code): Code => [...addr, ...value, 0x38, 0x02, 0x00];
export const f32add = (a: Code, b: Code): Code => [...a, ...b, 0x92];
export const f32sub = (a: Code, b: Code): Code => [...a, ...b, 0x93];
export const f32mul = (a: Code, b: Code): Code => [...a, ...b, 0x94];
/** f32x4.max: the larger lane, NaN where either is NaN, +0 over -0. */
export const fmax = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xe9)];
/** f32x4.pmax: b where a < b, else a (lane by lane). */
export const fpmax = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xeb)];
/** f32x4.pmin: b where b < a, else a (lane by lane). */
export const fpmin = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xea)];
export const fgt = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x44)];
/** f32x4.ne: all ones in each lane where a != b (so where a lane of a is NaN, a != a). */
export const fne = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x42)];
/** Two float64 lanes: a + b, a - b, a * b, all ones where a != b; the low two f32 lanes widened; a scalar in both. */
export const dadd = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf0)];
export const dsub = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf1)];
export const dmul = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf2)];
export const ddiv = (a: Code, b: Code): Code => [...a, ...b, ...simd(0xf3)];
/** f32x4.demote_f64x2_zero: both f64 lanes rounded to f32 in the low two lanes. */
export const demote = (a: Code): Code => [...a, ...simd(0x5e)];
/** v128.store64_lane 0: the low 8 bytes of a vector to an address. */
export const store64 = (addr: Code, value: Code): Code => [...addr, ...value, ...simd(0x5b), 0x00, 0x00, 0x00];
export const dne = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x48)];
export const promoteLow = (a: Code): Code => [...a, ...simd(0x5f)];
export const dsplat = (f: Code): Code => [...f, ...simd(0x14)];
/** v128.load64_zero: 8 bytes at an address into the low half, the high half zero. */
export const load64 = (addr: Code): Code => [...addr, ...simd(0x5d), 0x00, 0x00];
/** i32x4.eq: all ones in each lane where a and b are equal. */
export const ieq = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x37)];
/** i32x4.splat of a constant. */
export const isplat = (n: number): Code => [...i32(n), ...simd(0x11)];
export const vnot = (a: Code): Code => [...a, ...simd(0x4d)];
export const vand = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x4e)];
/** a & ~b */
export const vandnot = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x4f)];
export const vor = (a: Code, b: Code): Code => [...a, ...b, ...simd(0x50)];
/** (a & mask) | (b & ~mask) */
export const bitselect = (a: Code, b: Code, mask: Code): Code => [...a, ...b, ...mask, ...simd(0x52)];

/** Signed LEB128 (i32.const operands). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** `if (condition on the stack is non-zero) then; else otherwise` (no result). */
export function ifElse(then: Code, otherwise: Code): Code {
  return [0x04, 0x40, ...then, ...(otherwise.length ? [0x05, ...otherwise] : []), 0x0b];
}

/** `for (local = 0; local < end; local += step) body` with i32 operands. */
export const forLoop = (local: number, end: Code, step: number, body: Code): Code => forFrom(local, i32(0), end, step, body);

/** `for (local = start; local < end; local += step) body` with i32 operands. */
export function forFrom(local: number, start: Code, end: Code, step: number, body: Code): Code {
  return [
    ...start, ...set(local),
    0x02, 0x40, 0x03, 0x40, // block, loop
    ...get(local), ...end, 0x4f, 0x0d, 0x01, // br_if out when local >= end (unsigned)
    ...body,
    ...iadd(get(local), i32(step)), ...set(local),
    0x0c, 0x00, 0x0b, 0x0b, // br loop; end loop; end block
  ];
}

export interface WasmFunction {
  name: string;
  params: number[];
  /** [count, type] runs of locals after the params. */
  locals: Array<[number, number]>;
  code: Code;
}

/**
 * One function per tile shape (a, b), a in 1..maxA major, b in 1..maxB: the function for (a, b) is
 * at index (a - 1) * maxB + b - 1, which is how a driver finds the one for a tile's remainder.
 */
export function tileFunctions(maxA: number, maxB: number, make: (a: number, b: number) => WasmFunction): WasmFunction[] {
  const all: WasmFunction[] = [];
  for (let a = 1; a <= maxA; a++) for (let b = 1; b <= maxB; b++) all.push(make(a, b));
  return all;
}

/** The module's bytes; `shared` must match the imported memory (the threaded build's is shared). */
export function moduleBytes(functions: WasmFunction[], shared: boolean): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [0x60, ...uleb(f.params.length), ...f.params, 0x00]);
  // shared memories must declare a maximum (65536 pages = 4 GiB)
  const limits = shared ? [0x03, ...uleb(1), ...uleb(65536)] : [0x00, ...uleb(1)];
  const bodies = functions.map((f) => {
    const body = [...vec(f.locals.map(([n, t]) => [...uleb(n), t])), ...f.code, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, ...limits]])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(bodies)),
  ]);
}

/** True for the threaded build's memory (a SharedArrayBuffer other threads can work on). */
export function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/** The exports of `functions` instantiated over `memory`, or null where the engine cannot compile them. */
export function instantiateOver(memory: WebAssembly.Memory, functions: WasmFunction[]): WebAssembly.Exports | null {
  const bytes = moduleBytes(functions, isShared(memory));
  if (!WebAssembly.validate(bytes)) return null;
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
}
