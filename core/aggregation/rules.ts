/**
 * Aggregation rules behind one interface: a rule says what the trainer in each slot trains in a
 * round and how updates combine into the next global model. The round loops know nothing of
 * slicing; whether updates are applied in rounds or as they arrive is the loop's business, not
 * the rule's.
 */
import type { LayerSpec } from '../model/spec.ts';
import type { Weights } from '../model/tensor.ts';
import type { SlicePlan } from '../model/slice-plan.ts';
import { fullPlan, inputRankForRound, rankForRound, slicePlan } from '../model/slice-plan.ts';
import { cutWeights, mergeInto } from './cut-merge.ts';
import { cutShape } from '../model/slice-plan.ts';

export interface Assignment {
  slot: number;
  round: number;
  rank: number;
  plan: SlicePlan;
}

export interface Update {
  assignment: Assignment;
  delta: Weights;
  numSamples: number;
}

export interface AggregationRule {
  assign(slot: number, round: number): Assignment;
  /** The weights to send for an assignment. */
  taskWeights(global: Weights, a: Assignment): Weights;
  /** Names and shapes an update for this assignment must carry. */
  expectedShapes(a: Assignment): { name: string; shape: number[] }[];
  /** The next global model: old + merged deltas; parts nobody updated keep their values. */
  combine(global: Weights, updates: Update[]): Weights;
}

abstract class RuleBase implements AggregationRule {
  abstract assign(slot: number, round: number): Assignment;

  taskWeights(global: Weights, a: Assignment): Weights {
    return cutWeights(global, a.plan);
  }

  expectedShapes(a: Assignment): { name: string; shape: number[] }[] {
    return a.plan.cuts.map((c) => ({ name: c.name, shape: cutShape(c) }));
  }

  combine(global: Weights, updates: Update[]): Weights {
    return mergeInto(
      global,
      updates.map((u) => ({ plan: u.assignment.plan, tensors: u.delta, weight: u.numSamples })),
      true,
    );
  }
}

/** The reference algorithm: each slot trains one slice, with swap and layerwise swap. */
export class SliceRule extends RuleBase {
  constructor(
    private readonly layers: LayerSpec[],
    private readonly fed: { worldSize: number; swap: boolean; layerwiseSwap: boolean },
  ) {
    super();
    slicePlan(layers, { rank: 0, worldSize: fed.worldSize }); // refuses a world size that does not divide the widths
  }

  assign(slot: number, round: number): Assignment {
    const { worldSize, swap, layerwiseSwap } = this.fed;
    const rank = rankForRound(slot, round, worldSize, swap);
    const inputRank = inputRankForRound(rank, round, worldSize, layerwiseSwap);
    return { slot, round, rank, plan: slicePlan(this.layers, { rank, worldSize, inputRank }) };
  }
}

/** Federated averaging: every slot trains the full model; deltas are averaged by samples. */
export class FedAvgRule extends RuleBase {
  private readonly plan: SlicePlan;

  constructor(layers: LayerSpec[]) {
    super();
    this.plan = fullPlan(layers);
  }

  assign(slot: number, round: number): Assignment {
    return { slot, round, rank: slot, plan: this.plan };
  }
}

export function makeRule(
  layers: LayerSpec[],
  fed: { mode: 'slice' | 'fedavg'; worldSize: number; swap: boolean; layerwiseSwap: boolean },
): AggregationRule {
  return fed.mode === 'slice' ? new SliceRule(layers, fed) : new FedAvgRule(layers);
}
