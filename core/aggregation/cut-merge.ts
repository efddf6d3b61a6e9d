/**
 * Cutting a model into slices and merging slices (or their deltas) back: pure maths over
 * Float32Array, no sockets, no tfjs. Every slice goes back exactly where it was cut from.
 */
import type { NamedTensor, Weights } from '../model/tensor.ts';
import { sizeOf } from '../model/tensor.ts';
import type { SlicePlan, TensorCut } from '../model/slice-plan.ts';
import { cutShape } from '../model/slice-plan.ts';
import { geometry, RunningMerge, type Contribution } from './running-merge.ts';

export type { Contribution };

/**
 * The part of `full` that cut `c` selects. A cut of the whole tensor shares `full`'s data (W fedavg
 * tasks hold one model, not W copies): neither may be written to while the other is in use.
 */
export function cutTensor(full: NamedTensor, c: TensorCut): NamedTensor {
  if (full.name !== c.name || sizeOf(full.shape) !== sizeOf(c.fullShape)) {
    throw new Error(`cut plan for ${c.name} does not fit tensor ${full.name} [${full.shape}]`);
  }
  const shape = cutShape(c);
  const g = geometry(c);
  if (g.len === g.axisLen) return { name: c.name, shape, data: full.data };
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

/**
 * Merges contributions into `base`, all at once (a round loop adds them as they arrive with
 * RunningMerge). Where contributions overlap (replicated tensors, or fedavg), their weighted mean is
 * used; where none covers a part, `base` is kept. asDelta: the contributions are deltas and the
 * result is base + merged delta; otherwise they are values that replace base. A single contribution
 * (or equal values) merges back bit-exactly.
 */
export function mergeInto(base: Weights, contributions: Contribution[], asDelta: boolean): Weights {
  const merge = new RunningMerge(base, contributions.map((c) => c.plan), asDelta);
  for (const c of contributions) merge.add(c);
  return merge.result();
}
