// One contract suite over every aggregation rule, then what is particular to each.
import { describe, expect, it } from 'vitest';
import { alexnetLayers, parameterSpecs } from '../core/model/spec.ts';
import { FedAvgRule, SliceRule, type AggregationRule } from '../core/aggregation/rules.ts';
import { sizeOf, subtractWeights, type Weights } from '../core/model/tensor.ts';
import { Rng } from '../core/rng.ts';

const layers = alexnetLayers({ width: 1 / 8, numClasses: 10 });

function randomWeights(seed: number): Weights {
  const rng = new Rng(seed);
  return parameterSpecs(layers).map((p) => {
    const data = new Float32Array(sizeOf(p.shape));
    for (let i = 0; i < data.length; i++) data[i] = rng.normal();
    return { name: p.name, shape: p.shape, data };
  });
}

const W = 4;
const rules: [string, () => AggregationRule][] = [
  ['slice', () => new SliceRule(layers, { worldSize: W, swap: true, layerwiseSwap: true })],
  ['fedavg', () => new FedAvgRule(layers)],
];

for (const [name, make] of rules) {
  describe(`aggregation rule contract: ${name}`, () => {
    const global = randomWeights(3);

    it('sends tensors of the shapes it expects back', () => {
      const rule = make();
      for (let slot = 0; slot < W; slot++) {
        const a = rule.assign(slot, 2);
        const sent = rule.taskWeights(global, a);
        expect(sent.map((t) => ({ name: t.name, shape: t.shape }))).toEqual(rule.expectedShapes(a));
      }
    });

    it('a round of zero deltas keeps the model bit-identical', () => {
      const rule = make();
      const updates = Array.from({ length: W }, (_, slot) => {
        const assignment = rule.assign(slot, 3);
        const delta = rule.taskWeights(global, assignment).map((t) => ({ ...t, data: new Float32Array(t.data.length) }));
        return { assignment, delta, numSamples: 50 };
      });
      const next = rule.combine(global, updates);
      next.forEach((t, i) => expect(Buffer.from(t.data.buffer).equals(Buffer.from(global[i].data.buffer))).toBe(true));
    });

    it('a round with no updates keeps the model', () => {
      const rule = make();
      const next = rule.combine(global, []);
      next.forEach((t, i) => expect(Buffer.from(t.data.buffer).equals(Buffer.from(global[i].data.buffer))).toBe(true));
    });

    it('trained-minus-sent deltas from every slot reproduce the trained values where slices are disjoint', () => {
      const rule = make();
      const target = randomWeights(9);
      const updates = Array.from({ length: W }, (_, slot) => {
        const assignment = rule.assign(slot, 1);
        const delta = subtractWeights(rule.taskWeights(target, assignment), rule.taskWeights(global, assignment));
        return { assignment, delta, numSamples: 10 };
      });
      const next = rule.combine(global, updates);
      const conv1 = next.find((t) => t.name === 'conv1.weight')!;
      const want = target.find((t) => t.name === 'conv1.weight')!;
      for (let i = 0; i < conv1.data.length; i += 97) expect(conv1.data[i]).toBeCloseTo(want.data[i], 5);
    });
  });
}

describe('slice rule', () => {
  it('gives every slot a distinct rank each round, rotating on even rounds with swap', () => {
    const rule = new SliceRule(layers, { worldSize: W, swap: true, layerwiseSwap: false });
    for (const round of [1, 2, 3, 4]) {
      const ranks = Array.from({ length: W }, (_, s) => rule.assign(s, round).rank);
      expect(new Set(ranks).size).toBe(W);
    }
    expect(rule.assign(0, 1).rank).toBe(0);
    expect(rule.assign(0, 2).rank).toBe(1);
  });

  it('refuses a world size that does not divide the widths', () => {
    expect(() => new SliceRule(layers, { worldSize: 8, swap: false, layerwiseSwap: false })).toThrow(/does not divide/);
  });
});
