/** What an experiment's roles call: the configured data set (made or checked on disk), its subsets and shards. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { datasetDir, type DatasetConfig } from '../config.ts';
import { FedsliceError } from '../errors.ts';
import { readManifest } from './manifest.ts';
import { partition } from './partition.ts';
import { loadCifarDir } from './reader.ts';
import { TEST_FILE, TRAIN_FILE } from './records.ts';
import { takeFraction } from './subset.ts';
import { SYNTHETIC_DEFAULTS, writeSynthetic } from './synthetic.ts';
import type { ImageSet, TrainTestSets } from './types.ts';

/**
 * The data set of an experiment: for 'synthetic', the set in its folder (the default set is
 * generated there first when the folder holds none); for 'cifar100', the downloaded files. Both
 * splits are cut to `fraction` with seeded, class-stratified subsets.
 */
export function loadForExperiment(dataset: DatasetConfig, seed: number): TrainTestSets {
  const dir = datasetDir(dataset);
  if (dataset.name === 'synthetic') {
    if (!readManifest(dir)) {
      const o = SYNTHETIC_DEFAULTS;
      process.stderr.write(`fedslice: no synthetic set in ${dir}; generating the default one (${o.numClasses} classes, ${o.trainCount} train, ${o.testCount} test, seed ${o.seed})\n`);
      writeSynthetic(dir, o);
    }
  } else if (!existsSync(join(dir, TRAIN_FILE)) || !existsSync(join(dir, TEST_FILE))) {
    throw new FedsliceError('FEDSLICE_ERR_DATA_MISSING', `CIFAR-100 is not in ${dir} (no ${TRAIN_FILE} / ${TEST_FILE}); run \`fedslice data download --dir ${dir}\` first`);
  }
  const sets = loadCifarDir(dir);
  if (dataset.fraction === 1) return sets;
  return {
    ...sets,
    train: takeFraction(sets.train, dataset.fraction, seed),
    test: takeFraction(sets.test, dataset.fraction, seed + 1),
  };
}

/** The training indices of trainer `shard` of `worldSize` under the configured partition. */
export function shardIndices(train: ImageSet, dataset: DatasetConfig, worldSize: number, shard: number, seed: number): Int32Array {
  if (!Number.isInteger(shard) || shard < 0 || shard >= worldSize) {
    throw new FedsliceError('FEDSLICE_ERR_PARTITION', `shard ${shard} is outside [0, ${worldSize}); pass a shard below the world size`);
  }
  return partition(dataset.partition, train.labels, worldSize, { seed, alpha: dataset.alpha })[shard];
}
