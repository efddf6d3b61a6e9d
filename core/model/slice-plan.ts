/**
 * Which part of every tensor a trainer gets: the reference's horizontal slicing.
 * Output-split layers keep a range of output units (weight and bias); input-split layers keep a
 * range of input units of the weight and the whole bias. With layerwise swap the input-split
 * layers cut at their own effective rank.
 */
import type { LayerSpec } from './spec.ts';
import { inAxis, outAxis, parameterSpecs } from './spec.ts';
import { FedsliceError } from '../errors.ts';

/** The part of one tensor a slice holds: [start, end) along `axis`, or the whole tensor. */
export interface TensorCut {
  name: string;
  fullShape: number[];
  /** null: the whole tensor (replicated across slices, averaged when merged). */
  axis: number | null;
  start: number;
  end: number;
}

export interface SlicePlan {
  rank: number;
  worldSize: number;
  /** Rank whose input range the input-split layers cut (= rank unless layerwise swap). */
  inputRank: number;
  cuts: TensorCut[];
}

export function cutShape(c: TensorCut): number[] {
  if (c.axis === null) return [...c.fullShape];
  const s = [...c.fullShape];
  s[c.axis] = c.end - c.start;
  return s;
}

/** Refuses a world size that does not divide every sliced layer evenly, naming the layer. */
export function checkSliceable(layers: LayerSpec[], worldSize: number): void {
  for (const l of layers) {
    const n = l.split === 'out' ? l.outUnits : l.inUnits;
    if (n % worldSize !== 0) {
      throw new FedsliceError(
        'FEDSLICE_ERR_SLICE',
        `federation.worldSize ${worldSize} does not divide ${l.name}'s ${n} ${l.split === 'out' ? 'output' : 'input'} units; choose a worldSize that divides every layer width (at model.width ${widthHint(layers)}) or change model.width`,
      );
    }
  }
}

function widthHint(layers: LayerSpec[]): string {
  return `${layers[0].outUnits / 96}`;
}

export function slicePlan(
  layers: LayerSpec[],
  p: { rank: number; worldSize: number; inputRank?: number },
): SlicePlan {
  const { rank, worldSize } = p;
  const inputRank = p.inputRank ?? rank;
  if (!(rank >= 0 && rank < worldSize && inputRank >= 0 && inputRank < worldSize)) {
    throw new FedsliceError('FEDSLICE_ERR_SLICE', `rank ${rank} / input rank ${inputRank} out of range for worldSize ${worldSize}`);
  }
  checkSliceable(layers, worldSize);
  const byLayer = new Map(layers.map((l) => [l.name, l]));
  const cuts = parameterSpecs(layers).map((ps): TensorCut => {
    const l = byLayer.get(ps.layer)!;
    const whole = { name: ps.name, fullShape: ps.shape, axis: null, start: 0, end: 0 };
    if (l.split === 'out') {
      const n = l.outUnits / worldSize;
      const axis = ps.role === 'weight' ? outAxis(l) : 0;
      return { name: ps.name, fullShape: ps.shape, axis, start: rank * n, end: (rank + 1) * n };
    }
    if (ps.role === 'bias') return whole;
    const n = l.inUnits / worldSize;
    return { name: ps.name, fullShape: ps.shape, axis: inAxis(l), start: inputRank * n, end: (inputRank + 1) * n };
  });
  return { rank, worldSize, inputRank, cuts };
}

/** The plan of the whole model: every tensor whole (fedavg, or a world of one). */
export function fullPlan(layers: LayerSpec[]): SlicePlan {
  return {
    rank: 0,
    worldSize: 1,
    inputRank: 0,
    cuts: parameterSpecs(layers).map((ps) => ({ name: ps.name, fullShape: ps.shape, axis: null, start: 0, end: 0 })),
  };
}

/**
 * Rank of the trainer in `slot` for `round` (rounds count from 1). With swap, every even round
 * moves every trainer one rank on, so its data trains a different slice over time.
 */
export function rankForRound(slot: number, round: number, worldSize: number, swap: boolean): number {
  return swap ? (slot + Math.floor(round / 2)) % worldSize : slot % worldSize;
}

/**
 * Effective rank of the input-split layers: with layerwise swap, (rank + round) mod W after the
 * first round, as the reference does (its rounds counted from 0; ours from 1).
 */
export function inputRankForRound(rank: number, round: number, worldSize: number, layerwiseSwap: boolean): number {
  return layerwiseSwap ? (rank + (round - 1)) % worldSize : rank;
}
