/**
 * Cutting a model into slices and merging slices (or their deltas) back: pure maths over
 * Float32Array, no sockets, no tfjs. Every slice goes back exactly where it was cut from.
 */
import type { NamedTensor, Weights } from '../model/tensor.ts';
import { sizeOf } from '../model/tensor.ts';
import type { SlicePlan, TensorCut } from '../model/slice-plan.ts';
import { cutShape } from '../model/slice-plan.ts';

/** Row-major geometry of a cut: `outer` blocks, each `axisLen * inner` long in the full tensor. */
function geometry(c: TensorCut) {
  if (c.axis === null) return { outer: 1, axisLen: 1, inner: sizeOf(c.fullShape), start: 0, len: 1 };
  const outer = sizeOf(c.fullShape.slice(0, c.axis));
  const inner = sizeOf(c.fullShape.slice(c.axis + 1));
  return { outer, axisLen: c.fullShape[c.axis], inner, start: c.start, len: c.end - c.start };
}

export function cutTensor(full: NamedTensor, c: TensorCut): NamedTensor {
  if (full.name !== c.name || sizeOf(full.shape) !== sizeOf(c.fullShape)) {
    throw new Error(`cut plan for ${c.name} does not fit tensor ${full.name} [${full.shape}]`);
  }
  const shape = cutShape(c);
  if (c.axis === null) return { name: c.name, shape, data: new Float32Array(full.data) };
  const g = geometry(c);
  const out = new Float32Array(sizeOf(shape));
  const block = g.len * g.inner;
  for (let o = 0; o < g.outer; o++) {
    const src = (o * g.axisLen + g.start) * g.inner;
    out.set(full.data.subarray(src, src + block), o * block);
  }
  return { name: c.name, shape, data: out };
}

export function cutWeights(full: Weights, plan: SlicePlan): Weights {
  const byName = new Map(full.map((t) => [t.name, t]));
  return plan.cuts.map((c) => {
    const t = byName.get(c.name);
    if (!t) throw new Error(`model has no tensor ${c.name}`);
    return cutTensor(t, c);
  });
}

export interface Contribution {
  plan: SlicePlan;
  /** Tensors in plan order, shaped as the plan's cuts. */
  tensors: Weights;
  /** Weight of this contribution where slices overlap (samples trained on). */
  weight: number;
}

/**
 * Merges contributions into `base`. Where contributions overlap (replicated tensors, or fedavg),
 * their weighted mean is used; where none covers a part, `base` is kept.
 * asDelta: the contributions are deltas and the result is base + merged delta;
 * otherwise they are values that replace base.
 * Sums run in float64, so a single contribution (or equal values) merges back bit-exactly.
 */
export function mergeInto(base: Weights, contributions: Contribution[], asDelta: boolean): Weights {
  return base.map((t) => {
    const parts = contributions.map((c) => {
      const i = c.plan.cuts.findIndex((k) => k.name === t.name);
      if (i < 0) throw new Error(`contribution has no cut for ${t.name}`);
      return { cut: c.plan.cuts[i], data: c.tensors[i].data, weight: c.weight };
    });
    return { name: t.name, shape: [...t.shape], data: mergeTensor(t.data, parts, asDelta) };
  });
}

function mergeTensor(
  base: Float32Array,
  parts: { cut: TensorCut; data: Float32Array; weight: number }[],
  asDelta: boolean,
): Float32Array {
  const out = new Float32Array(base);
  if (parts.length === 0) return out;
  const axes = new Set(parts.map((p) => p.cut.axis));
  if (axes.size !== 1) throw new Error(`contributions cut ${parts[0].cut.name} along different axes`);
  const g = geometry(parts[0].cut);
  const cover = new Uint32Array(g.axisLen);
  const wsum = new Float64Array(g.axisLen);
  for (const p of parts) {
    const pg = geometry(p.cut);
    const expected = pg.outer * pg.len * pg.inner;
    if (p.data.length !== expected) throw new Error(`contribution for ${p.cut.name} has ${p.data.length} values, expected ${expected}`);
    for (let a = pg.start; a < pg.start + pg.len; a++) {
      cover[a]++;
      wsum[a] += p.weight;
    }
  }
  // Where one part alone covers an index (the slices of slice mode), its weighted mean is its own
  // value: (w * d) / w is exactly d for a float32 d and an integer weight, so it is written
  // straight through. Overlaps (replicated tensors, fedavg) are summed in float64.
  const alone = (a: number) => cover[a] === 1 && wsum[a] > 0;
  let sum: Float64Array | null = null;
  for (const p of parts) {
    const pg = geometry(p.cut);
    const block = pg.len * pg.inner;
    for (const [a0, a1, single] of runs(pg.start, pg.start + pg.len, alone)) {
      if (!single) sum ??= new Float64Array(base.length);
      const n = (a1 - a0) * pg.inner;
      for (let o = 0; o < pg.outer; o++) {
        const dst = (o * pg.axisLen + a0) * pg.inner;
        const src = o * block + (a0 - pg.start) * pg.inner;
        if (!single) {
          const s = sum!;
          for (let k = 0; k < n; k++) s[dst + k] += p.weight * p.data[src + k];
        } else if (asDelta) {
          for (let k = 0; k < n; k++) out[dst + k] = base[dst + k] + p.data[src + k];
        } else {
          out.set(p.data.subarray(src, src + n), dst);
        }
      }
    }
  }
  if (!sum) return out;
  for (let o = 0; o < g.outer; o++) {
    for (let a = 0; a < g.axisLen; a++) {
      const w = wsum[a];
      if (w === 0 || alone(a)) continue;
      const at = (o * g.axisLen + a) * g.inner;
      for (let k = 0; k < g.inner; k++) {
        const v = sum[at + k] / w;
        out[at + k] = asDelta ? base[at + k] + v : v;
      }
    }
  }
  return out;
}

/** Maximal runs [a0, a1) of indices in [from, to) on which `test` gives the same answer. */
function runs(from: number, to: number, test: (a: number) => boolean): [number, number, boolean][] {
  const out: [number, number, boolean][] = [];
  for (let a = from; a < to; ) {
    const t = test(a);
    let b = a + 1;
    while (b < to && test(b) === t) b++;
    out.push([a, b, t]);
    a = b;
  }
  return out;
}
