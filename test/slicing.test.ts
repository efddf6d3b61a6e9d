import { describe, expect, it } from 'vitest';
import { alexnetLayers, parameterCount, parameterSpecs } from '../core/model/spec.ts';
import { fullPlan, inputRankForRound, rankForRound, slicePlan, cutShape } from '../core/model/slice-plan.ts';
import { cutWeights, mergeInto } from '../core/aggregation/cut-merge.ts';
import type { Weights } from '../core/model/tensor.ts';
import { sizeOf } from '../core/model/tensor.ts';
import { Rng } from '../core/rng.ts';

function randomWeights(width: number, numClasses: number, seed: number): Weights {
  const rng = new Rng(seed);
  return parameterSpecs(alexnetLayers({ width, numClasses })).map((p) => {
    const data = new Float32Array(sizeOf(p.shape));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal();
    return { name: p.name, shape: p.shape, data };
  });
}

function bitsEqual(a: Weights, b: Weights): boolean {
  return a.every((t, i) => {
    const x = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
    const y = new Uint32Array(b[i].data.buffer, b[i].data.byteOffset, b[i].data.length);
    return t.name === b[i].name && x.length === y.length && x.every((v, k) => v === y[k]);
  });
}

describe('model spec', () => {
  it('has the reference parameter count at width 1', () => {
    expect(parameterCount(alexnetLayers({ width: 1, numClasses: 100 }))).toBe(55_063_268);
  });

  it('refuses a width that gives fractional units', () => {
    expect(() => alexnetLayers({ width: 1 / 3, numClasses: 10 })).toThrow(/model.width/);
  });
});

describe('slice plan', () => {
  const layers = alexnetLayers({ width: 1, numClasses: 100 });

  it('gives trainer r of W the reference sub-network shapes', () => {
    const W = 4;
    const plan = slicePlan(layers, { rank: 1, worldSize: W });
    const shapes = Object.fromEntries(plan.cuts.map((c) => [c.name, cutShape(c)]));
    expect(shapes['conv1.weight']).toEqual([5, 5, 3, 96 / W]);
    expect(shapes['conv1.bias']).toEqual([96 / W]);
    expect(shapes['conv2.weight']).toEqual([5, 5, 96 / W, 256]);
    expect(shapes['conv2.bias']).toEqual([256]);
    expect(shapes['conv3.weight']).toEqual([3, 3, 256, 384 / W]);
    expect(shapes['conv4.weight']).toEqual([3, 3, 384 / W, 384]);
    expect(shapes['conv5.weight']).toEqual([3, 3, 384, 256 / W]);
    expect(shapes['conv6.weight']).toEqual([3, 3, 256 / W, 256]);
    expect(shapes['fc1.weight']).toEqual([4096, 4096 / W]);
    expect(shapes['fc2.weight']).toEqual([4096 / W, 4096]);
    expect(shapes['fc3.weight']).toEqual([4096, 4096 / W]);
    expect(shapes['fc4.weight']).toEqual([4096 / W, 100]);
    expect(shapes['fc4.bias']).toEqual([100]);
    const c = plan.cuts.find((k) => k.name === 'conv1.weight')!;
    expect([c.start, c.end]).toEqual([24, 48]);
  });

  it('sub-model parameter counts add up: sliced tensors partition, input-split biases replicate', () => {
    const W = 8;
    const total = parameterCount(layers);
    const replicatedBiases = layers.filter((l) => l.split === 'in').reduce((n, l) => n + l.outUnits, 0);
    let sum = 0;
    for (let r = 0; r < W; r++) {
      sum += slicePlan(layers, { rank: r, worldSize: W }).cuts.reduce((n, c) => n + sizeOf(cutShape(c)), 0);
    }
    expect(sum).toBe(total + (W - 1) * replicatedBiases);
  });

  it('refuses a world size that does not divide the widths, naming the layer', () => {
    const narrow = alexnetLayers({ width: 1 / 8, numClasses: 10 }); // conv1 has 12 units
    expect(() => slicePlan(narrow, { rank: 0, worldSize: 8 })).toThrow(/conv1's 12 output units/);
    expect(() => slicePlan(layers, { rank: 0, worldSize: 5 })).toThrow(/worldSize 5 does not divide/);
  });

  it('rotates ranks on even rounds with swap and shifts input ranks with layerwise swap', () => {
    expect([1, 2, 3, 4, 5].map((k) => rankForRound(0, k, 4, true))).toEqual([0, 1, 1, 2, 2]);
    expect([1, 2, 3].map((k) => rankForRound(3, k, 4, false))).toEqual([3, 3, 3]);
    expect([1, 2, 3, 4].map((k) => inputRankForRound(1, k, 4, true))).toEqual([1, 2, 3, 0]);
    expect(inputRankForRound(1, 3, 4, false)).toBe(1);
  });
});

describe('cut and merge', () => {
  const width = 1 / 4;
  const layers = alexnetLayers({ width, numClasses: 20 });
  const full = randomWeights(width, 20, 7);

  for (const W of [1, 2, 4, 8]) {
    for (const layerwise of [false, true]) {
      it(`cut-then-merge is bit-exact for W=${W}${layerwise ? ' with layerwise swap' : ''}`, () => {
        const round = 3;
        const contributions = Array.from({ length: W }, (_, r) => {
          const plan = slicePlan(layers, { rank: r, worldSize: W, inputRank: inputRankForRound(r, round, W, layerwise) });
          return { plan, tensors: cutWeights(full, plan), weight: 100 + r * 37 };
        });
        const zeros = full.map((t) => ({ ...t, data: new Float32Array(t.data.length) }));
        expect(bitsEqual(mergeInto(zeros, contributions, false), full)).toBe(true);
      });
    }
  }

  it('puts each layerwise-swapped input slice back where it was cut from', () => {
    const W = 4;
    const zeros = full.map((t) => ({ ...t, data: new Float32Array(t.data.length) }));
    // Each trainer marks its slice with its own rank + 1: the merged fc2 weight must show the
    // mark of the trainer whose input rank covered that row, not the trainer's plain rank.
    const contributions = Array.from({ length: W }, (_, r) => {
      const plan = slicePlan(layers, { rank: r, worldSize: W, inputRank: (r + 1) % W });
      const tensors = cutWeights(full, plan).map((t) => ({ ...t, data: new Float32Array(t.data.length).fill(r + 1) }));
      return { plan, tensors, weight: 1 };
    });
    const merged = mergeInto(zeros, contributions, true);
    const fc2 = merged.find((t) => t.name === 'fc2.weight')!;
    const rows = fc2.shape[0] / W;
    for (let block = 0; block < W; block++) {
      const owner = (block - 1 + W) % W; // trainer r cut input block (r + 1) mod W
      expect(fc2.data[block * rows * fc2.shape[1]]).toBe(owner + 1);
    }
    // input-split biases are replicated: their merged delta is the weighted mean of all marks
    const fc2b = merged.find((t) => t.name === 'fc2.bias')!;
    expect(fc2b.data[0]).toBeCloseTo((1 + 2 + 3 + 4) / 4, 6);
  });

  it('averages replicated tensors weighted by samples and keeps missing slices', () => {
    const W = 2;
    const base = randomWeights(width, 20, 1);
    const mk = (r: number, value: number, weight: number) => {
      const plan = slicePlan(layers, { rank: r, worldSize: W });
      const tensors = cutWeights(base, plan).map((t) => ({ ...t, data: new Float32Array(t.data.length).fill(value) }));
      return { plan, tensors, weight };
    };
    const merged = mergeInto(base, [mk(0, 1, 300), mk(1, 2, 100)], true);
    const bias = merged.find((t) => t.name === 'conv2.bias')!;
    const baseBias = base.find((t) => t.name === 'conv2.bias')!;
    expect(bias.data[5]).toBeCloseTo(baseBias.data[5] + (300 * 1 + 100 * 2) / 400, 5);
    // rank 1 missing: its half of conv1 keeps the old values bit-exactly
    const only0 = mergeInto(base, [mk(0, 1, 300)], true);
    const c1 = only0.find((t) => t.name === 'conv1.bias')!;
    const b1 = base.find((t) => t.name === 'conv1.bias')!;
    const half = c1.data.length / 2;
    expect(Array.from(c1.data.subarray(half))).toEqual(Array.from(b1.data.subarray(half)));
    expect(c1.data[0]).toBe(Math.fround(b1.data[0] + 1));
  });

  it('fedavg: full-model deltas merge as their sample-weighted mean', () => {
    const plan = fullPlan(layers);
    const base = randomWeights(width, 20, 2);
    const d = (v: number) => base.map((t) => ({ ...t, data: new Float32Array(t.data.length).fill(v) }));
    const merged = mergeInto(base, [{ plan, tensors: d(1), weight: 1 }, { plan, tensors: d(4), weight: 2 }], true);
    expect(merged[0].data[3]).toBe(Math.fround(base[0].data[3] + 3));
  });

  it('a zero delta leaves the model bit-identical', () => {
    const W = 4;
    const contributions = Array.from({ length: W }, (_, r) => {
      const plan = slicePlan(layers, { rank: r, worldSize: W, inputRank: (r + 2) % W });
      const tensors = cutWeights(full, plan).map((t) => ({ ...t, data: new Float32Array(t.data.length) }));
      return { plan, tensors, weight: 10 };
    });
    expect(bitsEqual(mergeInto(full, contributions, true), full)).toBe(true);
  });
});
