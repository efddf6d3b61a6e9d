/**
 * Two passes over whole models at SIMD speed, for arrays that live outside any wasm memory (a
 * received frame, the merge's result): the non-finite scan of every received tensor and the
 * merge's base + delta. JavaScript reads a Float32Array one element at a time; a WebAssembly SIMD
 * loop does four lanes at a time, but wasm reads only its own memory, so the arrays pass through
 * a small window of memory owned by this module in 64 KB chunks. Copying a chunk in (and out) is a
 * memcpy that stays in cache, and the whole costs less than half the plain JavaScript loop (the
 * scan: 19 against 51 ms for 55 M floats, interleaved in one process). Where the engine cannot
 * compile the functions, the plain loops below run instead and give the same answers.
 */
import { I32, V128, fadd, forLoop, get, iadd, ieq, isplat, load, loadAt, set, store, vand, vor, vzero, instantiateOver, type WasmFunction } from './wasm-asm.ts';

/** Bytes of each region of the window: A, B (the second operand) and 16 bytes of flags after them. */
const CHUNK_BYTES = 1 << 16;
const CHUNK = CHUNK_BYTES / 4;
const A = 0;
const B = CHUNK_BYTES;
const FLAGS = 2 * CHUNK_BYTES;
/** The float32 exponent bits: all set for NaN and +-Infinity, and only for them. */
const EXPONENT = 0x7f800000;

/** flags = OR over [src, src + bytes) of (lane & EXPONENT) == EXPONENT, as four i32 lanes; bytes a multiple of 64. */
function scanFunction(): WasmFunction {
  const [SRC, BYTES, OUT, I, ACC, EXP] = [0, 1, 2, 3, 4, 5];
  const lane = (offset: number) => ieq(vand(loadAt(iadd(get(SRC), get(I)), offset), get(EXP)), get(EXP));
  const body = [0, 16, 32, 48].flatMap((offset) => [...vor(get(ACC), lane(offset)), ...set(ACC)]);
  return {
    name: 'nonFiniteLanes',
    params: [I32, I32, I32],
    locals: [[1, I32], [2, V128]],
    code: [...isplat(EXPONENT), ...set(EXP), ...vzero(), ...set(ACC), ...forLoop(I, get(BYTES), 64, body), ...store(get(OUT), get(ACC))],
  };
}

/** out[i] = a[i] + b[i] in float32 over `bytes` (a multiple of 16). */
function addFunction(): WasmFunction {
  const [X, Y, OUT, BYTES, I] = [0, 1, 2, 3, 4];
  const at = (p: number) => iadd(get(p), get(I));
  return { name: 'add', params: [I32, I32, I32, I32], locals: [[1, I32]], code: forLoop(I, get(BYTES), 16, store(at(OUT), fadd(load(at(X)), load(at(Y))))) };
}

interface Window {
  a: Float32Array;
  b: Float32Array;
  flags: Uint32Array;
  nonFiniteLanes: (src: number, bytes: number, out: number) => void;
  add: (x: number, y: number, out: number, bytes: number) => void;
}

let made: Window | null | undefined;

/** The window and its functions, made on first use; null where the engine has no wasm SIMD. */
function simdWindow(): Window | null {
  if (made !== undefined) return made;
  made = null;
  // FEDSLICE_SIMD_ARRAYS=off: the plain loops, for the bench's before/after (bench/transfer.ts)
  if (typeof WebAssembly === 'undefined' || process.env.FEDSLICE_SIMD_ARRAYS === 'off') return made;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((FLAGS + 16) / 65536) });
  const e = instantiateOver(memory, [scanFunction(), addFunction()]);
  const scan = e?.nonFiniteLanes;
  const add = e?.add;
  if (typeof scan !== 'function' || typeof add !== 'function') return made;
  made = {
    a: new Float32Array(memory.buffer, A, CHUNK),
    b: new Float32Array(memory.buffer, B, CHUNK),
    flags: new Uint32Array(memory.buffer, FLAGS, 4),
    nonFiniteLanes: (src, bytes, out) => void scan(src, bytes, out),
    add: (x, y, out, bytes) => void add(x, y, out, bytes),
  };
  return made;
}

/** Index of the first NaN or +-Infinity in `data`, or -1 when every value is finite. */
export function firstNonFinite(data: Float32Array): number {
  const w = simdWindow();
  // whole 64-byte blocks go through the window; the last few floats and any engine without SIMD, in JS
  const simdEnd = w ? data.length - (data.length % 16) : 0;
  for (let at = 0; w && at < simdEnd; at += CHUNK) {
    const n = Math.min(CHUNK, simdEnd - at);
    w.a.set(data.subarray(at, at + n));
    w.nonFiniteLanes(A, 4 * n, FLAGS);
    if ((w.flags[0] | w.flags[1] | w.flags[2] | w.flags[3]) === 0) continue;
    const i = firstNonFiniteIn(data, at, at + n);
    if (i >= 0) return i;
  }
  return firstNonFiniteIn(data, simdEnd, data.length);
}

function firstNonFiniteIn(data: Float32Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** Rows of n values: row r at `at + r * stride` in out and x, at `from + r * fromStride` in y. */
export interface Rows {
  count: number;
  n: number;
  at: number;
  stride: number;
  from: number;
  fromStride: number;
}

/**
 * out = x + y in float32 over `rows` (out and x share their layout). The same bits as JavaScript's
 * `out[i] = x[i] + y[j]`: a float32 sum rounded once, from a double (exact for the sum of two
 * float32s) or from the SIMD add. Short rows are added in JS: there a call costs more than it saves.
 */
export function addRows(out: Float32Array, x: Float32Array, y: Float32Array, rows: Rows): void {
  const { count, n, at, stride, from, fromStride } = rows;
  const w = n >= 64 ? simdWindow() : null;
  if (!w) {
    for (let r = 0; r < count; r++) addInJs(out, x, y, at + r * stride, from + r * fromStride, n);
    return;
  }
  // Rows fill the window whole where they fit; a row longer than the window goes through in pieces.
  const piece = Math.min(n, CHUNK);
  const perChunk = Math.max(1, Math.floor(CHUNK / n));
  for (let r0 = 0; r0 < count; r0 += perChunk) {
    const r1 = Math.min(count, r0 + perChunk);
    for (let k0 = 0; k0 < n; k0 += piece) {
      const len = Math.min(piece, n - k0);
      const filled = (r1 - r0) * len;
      gather(w.a, x, at + r0 * stride + k0, stride, r1 - r0, len);
      gather(w.b, y, from + r0 * fromStride + k0, fromStride, r1 - r0, len);
      const simdLen = filled - (filled % 4);
      w.add(A, B, A, 4 * simdLen);
      for (let i = simdLen; i < filled; i++) w.a[i] = w.a[i] + w.b[i];
      for (let r = 0; r < r1 - r0; r++) out.set(w.a.subarray(r * len, (r + 1) * len), at + (r0 + r) * stride + k0);
    }
  }
}

/** `count` rows of `len` values from `src` (row r at start + r * stride) packed into `window`. */
function gather(window: Float32Array, src: Float32Array, start: number, stride: number, count: number, len: number): void {
  if (stride === len) {
    window.set(src.subarray(start, start + count * len));
    return;
  }
  for (let r = 0; r < count; r++) window.set(src.subarray(start + r * stride, start + r * stride + len), r * len);
}

function addInJs(out: Float32Array, x: Float32Array, y: Float32Array, o: number, s: number, n: number): void {
  for (let k = 0; k < n; k++) out[o + k] = x[o + k] + y[s + k];
}
