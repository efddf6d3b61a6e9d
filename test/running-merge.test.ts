// The merge as updates arrive: any arrival order gives the same bits, and they are the bits of the
// plain float64 sum wherever that sum is exact.
import { describe, expect, it } from 'vitest';
import { alexnetLayers, parameterSpecs } from '../core/model/spec.ts';
import { fullPlan, slicePlan } from '../core/model/slice-plan.ts';
import { sizeOf, type Weights } from '../core/model/tensor.ts';
import { cutWeights } from '../core/aggregation/cut-merge.ts';
import { correctlyRoundedSum, geometry, RunningMerge, type Contribution } from '../core/aggregation/running-merge.ts';
import { FedAvgRule, SliceRule } from '../core/aggregation/rules.ts';
import { Rng } from '../core/rng.ts';

const layers = alexnetLayers({ width: 1 / 8, numClasses: 10 });

function weightsOf(fill: (i: number) => number): Weights {
  return parameterSpecs(layers).map((p) => {
    const data = new Float32Array(sizeOf(p.shape));
    for (let i = 0; i < data.length; i++) data[i] = fill(i);
    return { name: p.name, shape: p.shape, data };
  });
}

function randomWeights(seed: number, scale = 1): Weights {
  const rng = new Rng(seed);
  return weightsOf(() => scale * rng.normal());
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

function merged(base: Weights, contributions: Contribution[], order: number[], asDelta = true): Weights {
  const m = new RunningMerge(base, contributions.map((c) => c.plan), asDelta);
  for (const i of order) m.add(contributions[i]);
  return m.result();
}

const bits = (w: Weights) => Buffer.concat(w.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)));

/** The merge as it was written before it ran as updates arrive: weighted float64 sums in the given order. */
function plainFloat64Mean(base: Weights, contributions: Contribution[]): Weights {
  const wsum = contributions.reduce((n, c) => n + c.weight, 0);
  return base.map((t, i) => {
    const out = new Float32Array(t.data.length);
    for (let k = 0; k < out.length; k++) {
      let s = 0;
      for (const c of contributions) s += c.weight * c.tensors[i].data[k];
      out[k] = t.data[k] + s / wsum;
    }
    return { ...t, data: out };
  });
}

describe('running merge', () => {
  const plan = fullPlan(layers);
  // Two small tensors for the merges run once per arrival order.
  const tiny = [{ name: 'a', shape: [30, 20] }, { name: 'b', shape: [50] }];
  const tinyPlan = { rank: 0, worldSize: 1, inputRank: 0, cuts: tiny.map((t) => ({ name: t.name, fullShape: t.shape, axis: null, start: 0, end: 0 })) };
  const tinyWeights = (fill: (i: number) => number): Weights =>
    tiny.map((t) => ({ ...t, data: Float32Array.from({ length: sizeOf(t.shape) }, (_, i) => fill(i)) }));
  const tinyRandom = (seed: number, scale = 1) => {
    const rng = new Rng(seed);
    return tinyWeights(() => scale * rng.normal());
  };

  it('gives one result for all 24 arrival orders where a plain float64 running sum would not', () => {
    // Exact mean 1 + 2^-24 + 2^-52 rounds up to 1 + 2^-23 in float32; a float64 sum that adds
    // 4 first loses both 2^-51 terms and leaves the tie 1 + 2^-24, which rounds down to 1.
    const values = [4, 2 ** -22, 2 ** -51, 2 ** -51];
    const zeros = tinyWeights(() => 0);
    const contributions = values.map((v) => ({ plan: tinyPlan, tensors: tinyWeights(() => v), weight: 1 }));
    const results = permutations([0, 1, 2, 3]).map((order) => merged(zeros, contributions, order));
    for (const r of results) expect(bits(r).equals(bits(results[0]))).toBe(true);
    expect(results[0][0].data[0]).toBe(1 + 2 ** -23);
    const plainFirst = plainFloat64Mean(zeros, contributions);
    expect(plainFirst[0].data[0]).toBe(1); // what the order 4, 2^-22, 2^-51, 2^-51 gives without error-free sums
  });

  it('fedavg over random deltas: every arrival order of 5 updates gives the correctly rounded weighted mean', () => {
    const base = tinyRandom(1);
    // Deltas of very different scales make many float64 additions round.
    const contributions = [1, 1e-9, 1e6, 1e-12, 7].map((scale, r) => ({ plan: tinyPlan, tensors: tinyRandom(10 + r, scale), weight: 17 + 13 * r }));
    const wsum = contributions.reduce((n, c) => n + c.weight, 0);
    let rounded = 0;
    const expected = base.map((t, i) => {
      const terms = (k: number) => contributions.map((c) => c.weight * c.tensors[i].data[k]);
      for (let k = 0; k < t.data.length; k++) if (terms(k).reduce((a, b) => a + b, 0) !== correctlyRoundedSum(terms(k))) rounded++;
      return { ...t, data: Float32Array.from(t.data, (b, k) => b + correctlyRoundedSum(terms(k)) / wsum) };
    });
    expect(rounded).toBeGreaterThan(0); // the plain float64 sum in this order is off for some elements
    for (const order of permutations([0, 1, 2, 3, 4])) expect(bits(merged(base, contributions, order)).equals(bits(expected))).toBe(true);
  });

  it('equals the plain float64 weighted mean when its sums are exact', () => {
    const base = randomWeights(1);
    const small = [1, 2, 3].map((r) => ({ plan, tensors: randomWeights(20 + r), weight: 10 * r }));
    expect(bits(merged(base, small, [2, 0, 1])).equals(bits(plainFloat64Mean(base, small)))).toBe(true);
  });

  it('slice mode: a missing trainer keeps its slice, late replicated tensors are averaged, in any order', () => {
    const W = 4;
    const rule = new SliceRule(layers, { worldSize: W, swap: true, layerwiseSwap: true });
    const global = randomWeights(3);
    const assignments = Array.from({ length: W }, (_, slot) => rule.assign(slot, 2));
    const updates = assignments.map((assignment, r) => ({ assignment, delta: cutWeights(randomWeights(30 + r, 0.01), assignment.plan), numSamples: 40 + r }));
    const arrived = [3, 0, 2]; // slot 1 never answers
    const results = permutations(arrived).map((order) => {
      const m = rule.startMerge(global, assignments);
      for (const s of order) m.add(updates[s]);
      return m.result();
    });
    for (const r of results) expect(bits(r).equals(bits(results[0]))).toBe(true);
    expect(bits(results[0]).equals(bits(rule.combine(global, arrived.map((s) => updates[s]))))).toBe(true);
    // slot 1's part of conv1.weight keeps its old values bit-exactly
    const cut = assignments[1].plan.cuts.find((c) => c.name === 'conv1.weight')!;
    const conv1 = results[0].find((t) => t.name === 'conv1.weight')!;
    const was = global.find((t) => t.name === 'conv1.weight')!;
    const g = geometry(cut);
    expect(g.len).toBeLessThan(g.axisLen);
    for (let o = 0; o < g.outer; o++) {
      const at = (o * g.axisLen + g.start) * g.inner;
      expect(Buffer.from(conv1.data.slice(at, at + g.len * g.inner).buffer).equals(Buffer.from(was.data.slice(at, at + g.len * g.inner).buffer))).toBe(true);
    }
  });

  it('a result over base is the same bits, in base\'s own arrays where nothing was written through', () => {
    // fedavg: every element a running sum; the tiny case: additions that round (the exact sums path)
    const base = randomWeights(5);
    const contributions = [1, 2, 3].map((r) => ({ plan, tensors: randomWeights(40 + r, 1e-3 * r), weight: 7 * r }));
    const expected = merged(base.map((t) => ({ ...t, data: t.data.slice() })), contributions, [0, 1, 2]);
    const m = new RunningMerge(base, contributions.map((c) => c.plan), true);
    for (const c of [2, 0, 1]) m.add(contributions[c]);
    const over = m.result({ overBase: true });
    expect(bits(over).equals(bits(expected))).toBe(true);
    over.forEach((t, i) => expect(t.data).toBe(base[i].data));

    const zeros = tinyWeights(() => 0);
    const rounding = [4, 2 ** -22, 2 ** -51, 2 ** -51].map((v) => ({ plan: tinyPlan, tensors: tinyWeights(() => v), weight: 1 }));
    for (const order of permutations([0, 1, 2, 3])) {
      const into = tinyWeights(() => 0);
      const mm = new RunningMerge(into, rounding.map((c) => c.plan), true);
      for (const i of order) mm.add(rounding[i]);
      expect(bits(mm.result({ overBase: true })).equals(bits(merged(zeros, rounding, order)))).toBe(true);
      expect(into[0].data[0]).toBe(1 + 2 ** -23);
    }

    // slice mode: sliced tensors are written through into new arrays, replicated ones over base
    const W = 4;
    const rule = new SliceRule(layers, { worldSize: W, swap: true, layerwiseSwap: true });
    const global = randomWeights(6);
    const assignments = Array.from({ length: W }, (_, slot) => rule.assign(slot, 3));
    const updates = assignments.map((assignment, r) => ({ assignment, delta: cutWeights(randomWeights(50 + r, 0.01), assignment.plan), numSamples: 30 + r }));
    const fresh = rule.combine(global.map((t) => ({ ...t, data: t.data.slice() })), updates.slice(0, 3));
    const sm = rule.startMerge(global, assignments);
    for (const u of updates.slice(0, 3)) sm.add(u);
    expect(bits(sm.result({ overBase: true })).equals(bits(fresh))).toBe(true);
  });

  it('refuses a contribution the round did not plan', () => {
    const m = new RunningMerge(randomWeights(1), [plan], true);
    const c = { plan, tensors: randomWeights(2), weight: 1 };
    m.add(c);
    expect(() => m.add(c)).toThrow(/no planned contribution/);
  });

  it('fedavg tasks share the global model instead of copying it per trainer', () => {
    const rule = new FedAvgRule(layers);
    const global = randomWeights(4);
    const a = rule.taskWeights(global, rule.assign(0, 1));
    const b = rule.taskWeights(global, rule.assign(1, 1));
    a.forEach((t, i) => {
      expect(t.data).toBe(global[i].data);
      expect(b[i].data).toBe(global[i].data);
    });
  });
});

describe('correctly rounded sum', () => {
  it('is the nearest float64 to the exact sum, ties to even, whatever the order', () => {
    expect(correctlyRoundedSum([1, 2 ** -53, 2 ** -53])).toBe(1 + 2 ** -52);
    expect(correctlyRoundedSum([2 ** -53, 1, 2 ** -53])).toBe(1 + 2 ** -52);
    expect(correctlyRoundedSum([1, 2 ** -53])).toBe(1); // a tie: to even
    expect(correctlyRoundedSum([1, 2 ** -53, 2 ** -106])).toBe(1 + 2 ** -52); // just past the tie
    expect(correctlyRoundedSum([1e100, 1, -1e100, 1e-100])).toBe(1);
    expect(correctlyRoundedSum([])).toBe(0);
  });
});
