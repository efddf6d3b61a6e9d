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
import { cutWeights } from './cut-merge.ts';
import { RunningMerge } from './running-merge.ts';
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
  /**
   * A round's merge into `global`, for the updates of `assignments` (whether they all arrive or
   * not): add each update as it arrives, then take the next global model from result().
   */
  startMerge(global: Weights, assignments: readonly Assignment[]): RoundMerge;
  /** The next global model from all of a round's updates at once: startMerge, add each, result. */
  combine(global: Weights, updates: Update[]): Weights;
}

/** A round's merge in progress; updates may be added in any order with the same result. */
export interface RoundMerge {
  add(u: Update): void;
  /**
   * old + merged deltas; parts nobody updated keep their values. `overBase`: written over the
   * global model's arrays where it can be, for a caller that no longer reads the old model.
   */
  result(options?: { overBase?: boolean }): Weights;
}

abstract class RuleBase implements AggregationRule {
  abstract assign(slot: number, round: number): Assignment;

  taskWeights(global: Weights, a: Assignment): Weights {
    return cutWeights(global, a.plan);
  }

  expectedShapes(a: Assignment): { name: string; shape: number[] }[] {
    return a.plan.cuts.map((c) => ({ name: c.name, shape: cutShape(c) }));
  }

  startMerge(global: Weights, assignments: readonly Assignment[]): RoundMerge {
    const merge = new RunningMerge(global, assignments.map((a) => a.plan), true);
    return {
      add: (u) => merge.add({ plan: u.assignment.plan, tensors: u.delta, weight: u.numSamples }),
      result: (options) => merge.result(options),
    };
  }

  combine(global: Weights, updates: Update[]): Weights {
    const merge = this.startMerge(global, updates.map((u) => u.assignment));
    for (const u of updates) merge.add(u);
    return merge.result();
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
