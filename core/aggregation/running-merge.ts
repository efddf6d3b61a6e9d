/**
 * A round's merge done as its contributions arrive, so the aggregator never holds all W updates:
 * each contribution is folded into the next model when it is added and can be dropped at once.
 *
 * Where the round's plans give a part of a tensor to one contribution only (the slices of slice
 * mode), its values are written straight into the result: (w x d) / w is exactly d for a float32 d
 * and an integer weight. Where plans overlap (replicated tensors, fedavg), the weighted values are
 * summed per element in a float64 running sum (8 bytes a parameter, whatever W is, against 4 x W
 * for keeping the updates). A float64 sum depends on the order of its terms when an addition
 * rounds, and updates arrive in any order; so every addition is made error-free (TwoSum), the rare
 * non-zero rounding errors are kept aside, and the round's end uses the correctly rounded float64
 * of the exact sum. The result is the same for every arrival order, and equals the plain float64
 * sum of the terms whenever that sum did not round (the bits the merge always gave).
 */
import type { NamedTensor, Weights } from '../model/tensor.ts';
import { sizeOf } from '../model/tensor.ts';
import type { SlicePlan, TensorCut } from '../model/slice-plan.ts';
import { accumulateTwoSum, addRows, finishMean, type Rows } from '../compute/simd-arrays.ts';

export interface Contribution {
  plan: SlicePlan;
  /** Tensors in plan order, shaped as the plan's cuts. */
  tensors: Weights;
  /** Weight of this contribution where slices overlap (samples trained on). */
  weight: number;
}

/** Row-major geometry of a cut: `outer` blocks, each `axisLen * inner` long in the full tensor. */
export function geometry(c: TensorCut) {
  if (c.axis === null) return { outer: 1, axisLen: 1, inner: sizeOf(c.fullShape), start: 0, len: 1 };
  const outer = sizeOf(c.fullShape.slice(0, c.axis));
  const inner = sizeOf(c.fullShape.slice(c.axis + 1));
  return { outer, axisLen: c.fullShape[c.axis], inner, start: c.start, len: c.end - c.start };
}

export class RunningMerge {
  private readonly tensors: TensorMerge[];
  private readonly byName: Map<string, TensorMerge>;

  /**
   * `plans`: every contribution the round may add (one per assignment, whether it arrives or not).
   * asDelta: contributions are deltas and the result is base + their weighted mean; otherwise
   * the weighted mean replaces base. Parts that no arrived contribution covers keep base.
   */
  constructor(base: Weights, plans: readonly SlicePlan[], asDelta: boolean) {
    this.tensors = base.map((t) => {
      const cuts = plans.map((p) => {
        const c = p.cuts.find((k) => k.name === t.name);
        if (!c) throw new Error(`contribution has no cut for ${t.name}`);
        return c;
      });
      return new TensorMerge(t, cuts, asDelta);
    });
    this.byName = new Map(this.tensors.map((m) => [m.name, m]));
  }

  add(c: Contribution): void {
    c.plan.cuts.forEach((cut, i) => {
      const m = this.byName.get(cut.name);
      if (!m) throw new Error(`model has no tensor ${cut.name}`);
      m.add(cut, c.tensors[i].data, c.weight);
    });
  }

  /**
   * The merged model; the merge holds nothing after this. `overBase`: written over base's arrays
   * wherever no contribution was written straight through (fedavg with two or more contributions:
   * everywhere), instead of into new ones, for a caller that reads base nowhere else any more.
   */
  result({ overBase = false }: { overBase?: boolean } = {}): Weights {
    return this.tensors.map((m) => m.result(overBase));
  }
}

/** One tensor's share of a round's merge. */
class TensorMerge {
  readonly name: string;
  private readonly shape: number[];
  private readonly base: Float32Array;
  private readonly g: { outer: number; axisLen: number; inner: number };
  /** Per index along the cut axis: how many planned contributions cover it. */
  private readonly planned: Uint32Array;
  /** Per index along the cut axis: contributions added, and the sum of their weights. */
  private readonly cover: Uint32Array;
  private readonly wsum: Float64Array;
  private out: Float32Array | null = null;
  /** Running float64 sum of weight x value where plans overlap; its additions' rounding errors aside. */
  private sum: Float64Array | null = null;
  private spillAt: number[] = [];
  private spillError: number[] = [];

  constructor(
    t: NamedTensor,
    cuts: TensorCut[],
    private readonly asDelta: boolean,
  ) {
    this.name = t.name;
    this.shape = [...t.shape];
    this.base = t.data;
    if (new Set(cuts.map((c) => c.axis)).size > 1) throw new Error(`contributions cut ${t.name} along different axes`);
    this.g = cuts.length ? geometry(cuts[0]) : { outer: 1, axisLen: 1, inner: t.data.length };
    this.planned = new Uint32Array(this.g.axisLen);
    for (const c of cuts) {
      const cg = geometry(c);
      for (let a = cg.start; a < cg.start + cg.len; a++) this.planned[a]++;
    }
    this.cover = new Uint32Array(this.g.axisLen);
    this.wsum = new Float64Array(this.g.axisLen);
  }

  add(cut: TensorCut, data: Float32Array, weight: number): void {
    const pg = geometry(cut);
    const expected = pg.outer * pg.len * pg.inner;
    if (data.length !== expected) throw new Error(`contribution for ${cut.name} has ${data.length} values, expected ${expected}`);
    if (cut.axis !== null && pg.axisLen !== this.g.axisLen) throw new Error(`contribution cuts ${cut.name} along a different axis`);
    for (let a = pg.start; a < pg.start + pg.len; a++) {
      if (++this.cover[a] > this.planned[a]) throw new Error(`contribution for ${cut.name} covers a part no planned contribution left to add`);
      this.wsum[a] += weight;
    }
    const block = pg.len * pg.inner;
    for (const [a0, a1, alone] of runs(pg.start, pg.start + pg.len, (a) => this.planned[a] === 1)) {
      const n = (a1 - a0) * pg.inner;
      const at = a0 * pg.inner;
      const from = (a0 - pg.start) * pg.inner;
      if (alone) {
        if (weight > 0) this.writeThrough(data, { count: pg.outer, n, at, stride: pg.axisLen * pg.inner, from, fromStride: block });
        continue;
      }
      for (let o = 0; o < pg.outer; o++) this.accumulate(data, from + o * block, at + o * pg.axisLen * pg.inner, n, weight);
    }
  }

  result(overBase: boolean): Weights[number] {
    const out = this.out ?? (overBase ? this.base : this.newOut());
    if (out !== this.base) this.keepBaseWhereNothingArrived(out);
    const sum = this.sum;
    if (sum) {
      // where additions rounded, the correctly rounded sum replaces the running one before the finish
      for (const [at, s] of exactSums(sum, this.spillAt, this.spillError)) sum[at] = s;
      const { outer, axisLen, inner } = this.g;
      for (let a = 0; a < axisLen; a++) {
        const w = this.wsum[a];
        if (w === 0 || this.planned[a] === 1) continue;
        for (let o = 0; o < outer; o++) {
          const at = (o * axisLen + a) * inner;
          finish(out, this.base, sum, at, inner, w, this.asDelta);
        }
      }
    }
    this.out = null;
    this.sum = null;
    this.spillAt = [];
    this.spillError = [];
    return { name: this.name, shape: this.shape, data: out };
  }

  /**
   * The result's storage, left zero: every part is written once, by a contribution written through,
   * by the finish of a running sum, or from base where nothing with a weight arrived. Copying base
   * in first would be one more pass over the model, which at full width costs as much as the adds.
   */
  private newOut(): Float32Array {
    return new Float32Array(this.base.length);
  }

  private keepBaseWhereNothingArrived(out: Float32Array): void {
    const { outer, axisLen, inner } = this.g;
    for (const [a0, a1, none] of runs(0, axisLen, (a) => this.wsum[a] === 0)) {
      if (!none) continue;
      for (let o = 0; o < outer; o++) {
        const at = (o * axisLen + a0) * inner;
        out.set(this.base.subarray(at, at + (a1 - a0) * inner), at);
      }
    }
  }

  /** Rows of data written to out (+ base, for deltas) where no other contribution overlaps. */
  private writeThrough(data: Float32Array, rows: Rows): void {
    const out = (this.out ??= this.newOut());
    if (this.asDelta) {
      addRows(out, this.base, data, rows);
      return;
    }
    for (let r = 0; r < rows.count; r++) {
      const src = rows.from + r * rows.fromStride;
      out.set(data.subarray(src, src + rows.n), rows.at + r * rows.stride);
    }
  }

  /** sum[dst..] += weight x data[src..], each addition error-free (Knuth's TwoSum). */
  private accumulate(data: Float32Array, src: number, dst: number, n: number, weight: number): void {
    const sum = (this.sum ??= new Float64Array(this.base.length));
    accumulateTwoSum(sum, dst, data, src, n, weight, this.spillAt, this.spillError);
  }
}

/** out[at..at+n] = (base +) sum / w, rounded once to float32. */
function finish(out: Float32Array, base: Float32Array, sum: Float64Array, at: number, n: number, w: number, asDelta: boolean): void {
  if (asDelta) finishMean(out, base, sum, at, n, w);
  else for (let k = at; k < at + n; k++) out[k] = sum[k] / w;
}

/** For each element whose additions rounded: the correctly rounded sum of its running sum and errors. */
function exactSums(sum: Float64Array, at: number[], error: number[]): Map<number, number> {
  const terms = new Map<number, number[]>();
  at.forEach((j, i) => {
    const list = terms.get(j);
    if (list) list.push(error[i]);
    else terms.set(j, [sum[j], error[i]]);
  });
  const out = new Map<number, number>();
  for (const [j, list] of terms) out.set(j, correctlyRoundedSum(list));
  return out;
}

/**
 * The float64 nearest to the exact sum of finite `xs` (ties to even), whatever their order:
 * Shewchuk's non-overlapping partials with the final half-way correction, as Python's math.fsum.
 */
export function correctlyRoundedSum(xs: readonly number[]): number {
  const partials: number[] = [];
  for (let x of xs) {
    let i = 0;
    for (let y of partials) {
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    partials.length = i;
    partials.push(x);
  }
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
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
