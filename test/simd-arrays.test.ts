import { describe, expect, it } from 'vitest';
import { accumulateTwoSum, addRows, finishMean, firstNonFinite, type Rows } from '../core/compute/simd-arrays.ts';

/** The window holds 16384 floats; lengths and positions around its edges and the 16-float blocks. */
const CHUNK = 16384;

function firstNonFiniteReference(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

/** Deterministic floats of every kind a model holds: normal, tiny, huge, denormal, both zeros. */
function floats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const kind = (s >>> 0) % 8;
    if (kind === 0) bits[i] = (s >>> 0) & 0x807fffff; // denormal or zero, either sign
    else if (kind === 1) bits[i] = ((s >>> 0) & 0x80000000) | 0x7f7fffff; // largest finite
    else out[i] = Math.sin(s) * 10 ** ((s >>> 8) % 20 - 10);
  }
  return out;
}

describe('firstNonFinite', () => {
  const NON_FINITE_BITS = [0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0xffffffff];
  const lengths = [0, 1, 15, 16, 17, 63, 64, 65, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 21];

  it('finds nothing in finite data of any length: zeros, denormals, the largest floats', () => {
    for (const n of lengths) expect(firstNonFinite(floats(n, n + 1))).toBe(-1);
  });

  it('finds the first NaN or infinity, whatever its bits and wherever it is (blocks, chunk edges, the tail)', () => {
    for (const n of lengths.filter((n) => n > 0)) {
      const positions = [...new Set([0, 5, 15, 16, n - 17, n - 16, n - 1, CHUNK - 1, CHUNK, 2 * CHUNK + 7].filter((p) => p >= 0 && p < n))];
      positions.forEach((p, i) => {
        // every bit pattern at one place of each length, one pattern (in turn) at the others
        for (const b of i === 0 ? NON_FINITE_BITS : [NON_FINITE_BITS[(i + n) % NON_FINITE_BITS.length]]) {
          const a = floats(n, p + 7);
          new Uint32Array(a.buffer)[p] = b;
          expect(firstNonFinite(a)).toBe(p);
        }
      });
    }
  });

  it('reports the first of several, and reads a view at any offset of its buffer', () => {
    const a = floats(4 * CHUNK, 3);
    a[CHUNK + 40] = Infinity;
    a[CHUNK + 3] = NaN;
    a[3 * CHUNK] = -Infinity;
    expect(firstNonFinite(a)).toBe(CHUNK + 3);
    const view = a.subarray(CHUNK + 4);
    expect(firstNonFinite(view)).toBe(firstNonFiniteReference(view));
    expect(firstNonFinite(view)).toBe(36);
  });
});

describe('addRows', () => {
  const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

  function reference(out: Float32Array, x: Float32Array, y: Float32Array, r: Rows): void {
    for (let i = 0; i < r.count; i++) for (let k = 0; k < r.n; k++) out[r.at + i * r.stride + k] = x[r.at + i * r.stride + k] + y[r.from + i * r.fromStride + k];
  }

  it('gives the bits of the JavaScript loop, touching only its rows: short, long, strided and gathered rows', () => {
    const shapes: Rows[] = [
      { count: 75, n: 12, at: 3, stride: 96, from: 0, fromStride: 12 }, // short rows: JS
      { count: 200, n: 512, at: 1024, stride: 4096, from: 0, fromStride: 512 }, // an output slice of a dense layer
      { count: 1, n: 3 * CHUNK + 5, at: 7, stride: 3 * CHUNK + 5, from: 2, fromStride: 0 }, // one row longer than the window
      { count: 40, n: 67, at: 1, stride: 300, from: 5, fromStride: 90 }, // part of each slice row (a run)
      { count: 300, n: 64, at: 0, stride: 64, from: 0, fromStride: 64 }, // contiguous rows
      { count: 0, n: 100, at: 0, stride: 100, from: 0, fromStride: 100 },
    ];
    shapes.forEach((r, i) => {
      const size = r.count === 0 ? 16 : r.at + (r.count - 1) * r.stride + r.n + 3;
      const ySize = r.count === 0 ? 16 : r.from + (r.count - 1) * r.fromStride + r.n;
      const x = floats(size, 11 + i);
      const y = floats(ySize, 23 + i);
      const got = floats(size, 99 + i);
      const want = got.slice();
      addRows(got, x, y, r);
      reference(want, x, y, r);
      const g = bits(got);
      const w = bits(want);
      expect(g.findIndex((b, j) => b !== w[j]), `shape ${i}`).toBe(-1);
    });
  });
});

describe('accumulateTwoSum', () => {
  function reference(sum: Float64Array, dst: number, data: Float32Array, src: number, n: number, weight: number, at: number[], error: number[]): void {
    for (let k = 0; k < n; k++) {
      const x = weight * data[src + k];
      const j = dst + k;
      const a = sum[j];
      const s = a + x;
      const b = s - a;
      const e = a - (s - b) + (x - b);
      sum[j] = s;
      if (e !== 0) {
        at.push(j);
        error.push(e);
      }
    }
  }

  it('gives the bits and the rounding errors of the JavaScript loop, over several adds, at any offsets and lengths', () => {
    const SUMS = 8192; // float64 sums per window chunk
    for (const [n, dst, src] of [[5, 3, 1], [64, 0, 0], [1001, 7, 3], [SUMS, 0, 0], [SUMS + 3, 2, 9], [3 * SUMS - 1, 1, 0]]) {
      const got = { sum: new Float64Array(n + dst + 4), at: [] as number[], error: [] as number[] };
      const want = { sum: new Float64Array(n + dst + 4), at: [] as number[], error: [] as number[] };
      // weights and magnitudes that make some additions round and others exact
      [6250, 3, 0.1, 6251].forEach((weight, i) => {
        const data = floats(n + src, 31 + i + n);
        accumulateTwoSum(got.sum, dst, data, src, n, weight, got.at, got.error);
        reference(want.sum, dst, data, src, n, weight, want.at, want.error);
      });
      const a = new BigUint64Array(got.sum.buffer);
      const b = new BigUint64Array(want.sum.buffer);
      expect(a.findIndex((x, j) => x !== b[j]), `n ${n}`).toBe(-1);
      expect(got.at.length).toBeGreaterThan(0);
      expect(got.at).toEqual(want.at);
      expect(got.error).toEqual(want.error);
    }
  });
});

describe('finishMean', () => {
  it('gives the bits of base + sum / w rounded to float32 in JavaScript, at any offset and length', () => {
    for (const [n, at] of [[3, 1], [64, 0], [1001, 5], [8192, 0], [3 * 8192 + 7, 3]]) {
      const base = floats(n + at + 2, n);
      const sum = new Float64Array(n + at + 2).map((_, i) => Math.sin(i * 1.7) * 10 ** ((i % 13) - 6) * 6250.5);
      for (const w of [1, 3, 6250 * 8 + 17, 0.1]) {
        const got = floats(n + at + 2, 5);
        const want = got.slice();
        finishMean(got, base, sum, at, n, w);
        for (let k = at; k < at + n; k++) want[k] = base[k] + sum[k] / w;
        const g = new Uint32Array(got.buffer);
        const e = new Uint32Array(want.buffer);
        expect(g.findIndex((b, j) => b !== e[j]), `n ${n} w ${w}`).toBe(-1);
      }
    }
  });
});
