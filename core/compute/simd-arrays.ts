/**
 * Passes over whole models at SIMD speed, for arrays that live outside any wasm memory (a received
 * frame, the merge's result and running sum): the non-finite scan of every received tensor, the
 * merge's base + delta, and its error-free float64 running sum where contributions overlap.
 * JavaScript reads a typed array one element at a time; a WebAssembly SIMD loop does two or four
 * lanes at a time, but wasm reads only its own memory, so the arrays pass through a small window of
 * memory owned by this module in 64 KB chunks. Copying a chunk in (and out) is a memcpy that stays
 * in cache, and the whole costs well under the plain JavaScript loop (the scan: 19 against 51 ms
 * for 55 M floats, interleaved in one process). Each function does the same IEEE operations in the
 * same order as its loop in JavaScript, so the bits are the same; where the engine cannot compile
 * the functions (or FEDSLICE_SIMD_ARRAYS=off), those loops run instead.
 */
import { F64, I32, V128, dadd, ddiv, demote, dmul, dne, dsplat, dsub, fadd, forLoop, get, i32, iadd, ieq, isplat, load, load64, loadAt, promoteLow, set, store, store64, vand, vor, vzero, instantiateOver, type WasmFunction } from './wasm-asm.ts';

/** Bytes of each region of the window: A, B, C, then 16 bytes of flags. */
const CHUNK_BYTES = 1 << 16;
const CHUNK = CHUNK_BYTES / 4;
const A = 0;
const B = CHUNK_BYTES;
const C = 2 * CHUNK_BYTES;
const FLAGS = 3 * CHUNK_BYTES;
/** float64 sums a chunk of the running sum holds (64 KB). */
const SUMS = CHUNK_BYTES / 8;
/** Runs shorter than this are done in JS: there a call costs more than it saves. */
const SIMD_MIN_LENGTH = 64;
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

/** i32.shr_u by 1: the byte offset of a float32 from that of the float64 at the same index. */
const half = (c: number[]) => [...c, ...i32(1), 0x76];

/**
 * For each of `bytes / 8` float64 sums (a multiple of 2): x = weight * data[i] in float64, s = sum[i] + x
 * and e its rounding error (Knuth's TwoSum); sum[i] = s, err[i] = e, flags |= (e != 0).
 */
function twoSumFunction(): WasmFunction {
  const [DATA, SUM, ERR, BYTES, WEIGHT, OUT, I, X, AV, S, BV, E, ACC, WV] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const body = [
    ...dmul(promoteLow(load64(iadd(get(DATA), half(get(I))))), get(WV)), ...set(X),
    ...load(iadd(get(SUM), get(I))), ...set(AV),
    ...dadd(get(AV), get(X)), ...set(S),
    ...dsub(get(S), get(AV)), ...set(BV),
    ...dadd(dsub(get(AV), dsub(get(S), get(BV))), dsub(get(X), get(BV))), ...set(E),
    ...store(iadd(get(SUM), get(I)), get(S)),
    ...store(iadd(get(ERR), get(I)), get(E)),
    ...vor(get(ACC), dne(get(E), vzero())), ...set(ACC),
  ];
  return {
    name: 'twoSum',
    params: [I32, I32, I32, I32, F64, I32],
    locals: [[1, I32], [7, V128]],
    code: [...dsplat(get(WEIGHT)), ...set(WV), ...vzero(), ...set(ACC), ...forLoop(I, get(BYTES), 16, body), ...store(get(OUT), get(ACC))],
  };
}

/** out[i] = float32(base[i] + sum[i] / w) for each of `bytes / 8` float64 sums (a multiple of 2). */
function finishFunction(): WasmFunction {
  const [BASE, SUM, OUT, BYTES, W, I, WV] = [0, 1, 2, 3, 4, 5, 6];
  const value = dadd(promoteLow(load64(iadd(get(BASE), half(get(I))))), ddiv(load(iadd(get(SUM), get(I))), get(WV)));
  return {
    name: 'finish',
    params: [I32, I32, I32, I32, F64],
    locals: [[1, I32], [1, V128]],
    code: [...dsplat(get(W)), ...set(WV), ...forLoop(I, get(BYTES), 16, store64(iadd(get(OUT), half(get(I))), demote(value)))],
  };
}

interface Window {
  a: Float32Array;
  b: Float32Array;
  flags: Uint32Array;
  nonFiniteLanes: (src: number, bytes: number, out: number) => void;
  add: (x: number, y: number, out: number, bytes: number) => void;
  data: Float32Array;
  sum: Float64Array;
  err: Float64Array;
  twoSum: (data: number, sum: number, err: number, bytes: number, weight: number, out: number) => void;
  out: Float32Array;
  finish: (base: number, sum: number, out: number, bytes: number, w: number) => void;
}

let made: Window | null | undefined;

/** The window and its functions, made on first use; null where the engine has no wasm SIMD. */
function simdWindow(): Window | null {
  if (made !== undefined) return made;
  made = null;
  // off: the plain loops, for the bench's before/after (bench/transfer.ts)
  if (typeof WebAssembly === 'undefined' || process.env.FEDSLICE_SIMD_ARRAYS === 'off') return made;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((FLAGS + 16) / 65536) });
  const e = instantiateOver(memory, [scanFunction(), addFunction(), twoSumFunction(), finishFunction()]);
  const scan = e?.nonFiniteLanes;
  const add = e?.add;
  const twoSum = e?.twoSum;
  const finish = e?.finish;
  if (typeof scan !== 'function' || typeof add !== 'function' || typeof twoSum !== 'function' || typeof finish !== 'function') return made;
  made = {
    a: new Float32Array(memory.buffer, A, CHUNK),
    b: new Float32Array(memory.buffer, B, CHUNK),
    flags: new Uint32Array(memory.buffer, FLAGS, 4),
    nonFiniteLanes: (src, bytes, out) => void scan(src, bytes, out),
    add: (x, y, out, bytes) => void add(x, y, out, bytes),
    data: new Float32Array(memory.buffer, A, SUMS),
    sum: new Float64Array(memory.buffer, B, SUMS),
    err: new Float64Array(memory.buffer, C, SUMS),
    twoSum: (data, sum, err, bytes, weight, out) => void twoSum(data, sum, err, bytes, weight, out),
    out: new Float32Array(memory.buffer, C, SUMS),
    finish: (base, sum, out, bytes, w) => void finish(base, sum, out, bytes, w),
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
 * float32s) or from the SIMD add. Short rows are added in JS.
 */
export function addRows(out: Float32Array, x: Float32Array, y: Float32Array, rows: Rows): void {
  const { count, n, at, stride, from, fromStride } = rows;
  const w = n >= SIMD_MIN_LENGTH ? simdWindow() : null;
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

/** The window for a run of n float64 sums, and where the part it takes ends: whole pairs (two lanes), none of a short run. */
function sumsWindow(n: number): { w: Window | null; simdEnd: number } {
  const w = n >= SIMD_MIN_LENGTH ? simdWindow() : null;
  return { w, simdEnd: w ? n - (n % 2) : 0 };
}

function addInJs(out: Float32Array, x: Float32Array, y: Float32Array, o: number, s: number, n: number): void {
  for (let k = 0; k < n; k++) out[o + k] = x[o + k] + y[s + k];
}

/**
 * sum[dst + k] += weight * data[src + k] for k < n, each addition error-free (Knuth's TwoSum): where
 * an addition rounded, its index and error are pushed onto spillAt and spillError, in index order.
 * The same operations in the same order as the JavaScript loop, so the same bits, two lanes at a time.
 */
export function accumulateTwoSum(sum: Float64Array, dst: number, data: Float32Array, src: number, n: number, weight: number, spillAt: number[], spillError: number[]): void {
  const { w, simdEnd } = sumsWindow(n);
  for (let k0 = 0; w && k0 < simdEnd; k0 += SUMS) {
    const len = Math.min(SUMS, simdEnd - k0);
    w.data.set(data.subarray(src + k0, src + k0 + len));
    w.sum.set(sum.subarray(dst + k0, dst + k0 + len));
    w.twoSum(A, B, C, 8 * len, weight, FLAGS);
    sum.set(w.sum.subarray(0, len), dst + k0);
    if ((w.flags[0] | w.flags[1] | w.flags[2] | w.flags[3]) === 0) continue;
    for (let k = 0; k < len; k++) {
      if (w.err[k] !== 0) {
        spillAt.push(dst + k0 + k);
        spillError.push(w.err[k]);
      }
    }
  }
  for (let k = simdEnd; k < n; k++) {
    const x = weight * data[src + k];
    const j = dst + k;
    const a = sum[j];
    const s = a + x;
    const b = s - a;
    const e = a - (s - b) + (x - b);
    sum[j] = s;
    if (e !== 0) {
      spillAt.push(j);
      spillError.push(e);
    }
  }
}

/** out[at + k] = base[at + k] + sum[at + k] / w for k < n, rounded once to float32. */
export function finishMean(out: Float32Array, base: Float32Array, sum: Float64Array, at: number, n: number, w: number): void {
  const { w: win, simdEnd } = sumsWindow(n);
  for (let k0 = 0; win && k0 < simdEnd; k0 += SUMS) {
    const len = Math.min(SUMS, simdEnd - k0);
    win.data.set(base.subarray(at + k0, at + k0 + len));
    win.sum.set(sum.subarray(at + k0, at + k0 + len));
    win.finish(A, B, C, 8 * len, w);
    out.set(win.out.subarray(0, len), at + k0);
  }
  for (let k = at + simdEnd; k < at + n; k++) out[k] = base[k] + sum[k] / w;
}
