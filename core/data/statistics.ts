/** What data an experiment trains and tests on: sizes, the partition, and per-class counts per shard. */
import type { DatasetConfig } from '../config.ts';
import { shardIndices } from './load.ts';
import type { LabelSet } from './types.ts';

export interface ShardStatistics {
  shard: number;
  images: number;
  /** Images of each class (index = class label). */
  perClass: number[];
}

export interface DataStatistics {
  dataset: DatasetConfig['name'];
  fraction: number;
  partition: DatasetConfig['partition'];
  /** Dirichlet concentration; only for the dirichlet partition. */
  alpha?: number;
  numClasses: number;
  trainImages: number;
  testImages: number;
  testPerClass: number[];
  shards: ShardStatistics[];
}

function perClass(set: LabelSet, indices?: Int32Array): number[] {
  const counts = new Array<number>(set.numClasses).fill(0);
  if (indices) for (const i of indices) counts[set.labels[i]]++;
  else for (let i = 0; i < set.count; i++) counts[set.labels[i]]++;
  return counts;
}

/** The statistics of the experiment's sets (their labels), the training set cut into `worldSize` shards as the trainers cut it. */
export function dataStatistics(dataset: DatasetConfig, sets: { train: LabelSet; test: LabelSet }, worldSize: number, seed: number): DataStatistics {
  const shards = Array.from({ length: worldSize }, (_, shard) => {
    const indices = shardIndices(sets.train, dataset, worldSize, shard, seed);
    return { shard, images: indices.length, perClass: perClass(sets.train, indices) };
  });
  return {
    dataset: dataset.name,
    fraction: dataset.fraction,
    partition: dataset.partition,
    ...(dataset.partition === 'dirichlet' ? { alpha: dataset.alpha } : {}),
    numClasses: sets.train.numClasses,
    trainImages: sets.train.count,
    testImages: sets.test.count,
    testPerClass: perClass(sets.test),
    shards,
  };
}
