/**
 * Asynchronous aggregation (FedAsync, Xie et al. 2019; buffered as in FedBuff, Nguyen et al. 2022):
 * an update computed from model version v and applied at version t has staleness s = t - v, and
 * is added to the global model scaled by mixing x weight(s). Deltas rather than whole models are
 * mixed, so no old model versions need to be kept.
 */
import type { FederationConfig } from '../config.ts';
import type { Weights } from '../model/tensor.ts';

export interface AsyncSettings {
  mixing: number;
  staleness: { fn: 'constant' | 'polynomial' | 'hinge'; a: number; b: number };
  bufferSize: number;
  evalEvery: number;
}

/** The async settings of a federation config with every default filled in. */
export function asyncSettings(fed: FederationConfig): AsyncSettings {
  const a = fed.async ?? {};
  return {
    mixing: a.mixing ?? 0.6,
    staleness: { fn: a.staleness?.fn ?? 'polynomial', a: a.staleness?.a ?? 0.5, b: a.staleness?.b ?? 4 },
    bufferSize: a.bufferSize ?? 1,
    evalEvery: a.evalEvery ?? fed.worldSize,
  };
}

/**
 * The last round a run records: `rounds` in sync modes; in async mode one round per evaluation,
 * every evalEvery of its rounds x worldSize updates.
 */
export function plannedRounds(fed: FederationConfig): number {
  return fed.mode === 'async' ? Math.ceil((fed.rounds * fed.worldSize) / asyncSettings(fed).evalEvery) : fed.rounds;
}

/** FedAsync's staleness functions; all are 1 at s = 0 and never increase with s. */
export function stalenessWeight(f: AsyncSettings['staleness'], s: number): number {
  switch (f.fn) {
    case 'constant':
      return 1;
    case 'polynomial':
      return (1 + s) ** -f.a;
    case 'hinge':
      return s <= f.b ? 1 : 1 / (f.a * (s - f.b) + 1);
  }
}

/** global + sum of scale_i x delta_i, in float64 per element; returns new tensors. */
export function addScaledDeltas(global: Weights, deltas: { delta: Weights; scale: number }[]): Weights {
  return global.map((t, i) => {
    const out = new Float32Array(t.data.length);
    const base = t.data;
    for (let j = 0; j < base.length; j++) {
      let v = base[j];
      for (const d of deltas) v += d.scale * d.delta[i].data[j];
      out[j] = v;
    }
    return { name: t.name, shape: [...t.shape], data: out };
  });
}
