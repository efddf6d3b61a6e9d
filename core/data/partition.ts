/** Splits training indices into per-trainer shards: contiguous blocks (the reference), iid, or Dirichlet non-iid. */
import { FedsliceError } from '../errors.ts';
import { range, Rng } from '../rng.ts';

export type PartitionKind = 'contiguous' | 'iid' | 'dirichlet';

export interface PartitionOptions {
  seed: number;
  /** Dirichlet concentration: small = each shard dominated by few classes. Used by 'dirichlet' only. */
  alpha: number;
}

/** Block r of n items over w shards: [r*n/w, (r+1)*n/w) with integer division, as the reference. */
function block(n: number, w: number, r: number): [number, number] {
  return [Math.floor((r * n) / w), Math.floor(((r + 1) * n) / w)];
}

function splitEvenly(indices: Int32Array, numShards: number): Int32Array[] {
  return Array.from({ length: numShards }, (_, r) => {
    const [a, b] = block(indices.length, numShards, r);
    return indices.slice(a, b);
  });
}

function dirichlet(rng: Rng, k: number, alpha: number): number[] {
  const g = Array.from({ length: k }, () => rng.gamma(alpha));
  const sum = g.reduce((a, b) => a + b, 0);
  // with a tiny alpha every draw can underflow to 0; fall back to one random shard
  if (!(sum > 0)) {
    const p = new Array<number>(k).fill(0);
    p[rng.int(k)] = 1;
    return p;
  }
  return g.map((v) => v / sum);
}

function dirichletShards(labels: Uint8Array, numShards: number, seed: number, alpha: number): Int32Array[] {
  const rng = Rng.derive(seed, 'partition-dirichlet');
  let numClasses = 0;
  for (const l of labels) numClasses = Math.max(numClasses, l + 1);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const shards: number[][] = Array.from({ length: numShards }, () => []);
  for (const members of byClass) {
    if (members.length === 0) continue;
    const shuffled = rng.shuffle(Int32Array.from(members));
    const p = dirichlet(rng, numShards, alpha);
    // cut this class at the cumulative proportions
    let acc = 0;
    let prev = 0;
    for (let s = 0; s < numShards; s++) {
      acc += p[s];
      const end = s === numShards - 1 ? shuffled.length : Math.min(shuffled.length, Math.round(acc * shuffled.length));
      for (let k = prev; k < end; k++) shards[s].push(shuffled[k]);
      prev = Math.max(prev, end);
    }
  }
  // every shard non-empty: an empty shard takes one image from the currently largest shard
  for (let s = 0; s < numShards; s++) {
    if (shards[s].length > 0) continue;
    let largest = 0;
    for (let t = 1; t < numShards; t++) if (shards[t].length > shards[largest].length) largest = t;
    shards[s].push(shards[largest].splice(rng.int(shards[largest].length), 1)[0]);
  }
  return shards.map((s) => Int32Array.from(s).sort());
}

/**
 * Indices into `labels` for each of `numShards` shards: disjoint, together covering every index,
 * deterministic for a seed, and none empty.
 */
export function partition(kind: PartitionKind, labels: Uint8Array, numShards: number, opts: PartitionOptions): Int32Array[] {
  const n = labels.length;
  if (!Number.isInteger(numShards) || numShards < 1) {
    throw new FedsliceError('FEDSLICE_ERR_PARTITION', `number of shards must be a positive integer, got ${numShards}`);
  }
  if (numShards > n) {
    throw new FedsliceError('FEDSLICE_ERR_PARTITION', `cannot split ${n} training images into ${numShards} non-empty shards; use more data (dataset.fraction) or fewer trainers`);
  }
  switch (kind) {
    case 'contiguous':
      return splitEvenly(range(n), numShards);
    case 'iid':
      return splitEvenly(Rng.derive(opts.seed, 'partition-iid').shuffle(range(n)), numShards).map((s) => s.sort());
    case 'dirichlet':
      if (!(opts.alpha > 0)) throw new FedsliceError('FEDSLICE_ERR_PARTITION', `dirichlet alpha must be positive, got ${opts.alpha}`);
      return dirichletShards(labels, numShards, opts.seed, opts.alpha);
    default: {
      const never: never = kind;
      throw new FedsliceError('FEDSLICE_ERR_PARTITION', `unknown partition '${String(never)}'; use contiguous, iid or dirichlet`);
    }
  }
}
