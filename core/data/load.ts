/** What an experiment's roles call: the configured data set (made or checked on disk), its subsets and shards. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { datasetDir, type DatasetConfig } from '../config.ts';
import { FedsliceError } from '../errors.ts';
import { readManifest } from './manifest.ts';
import { partition } from './partition.ts';
import { openCifarDir, readCifarSplit, type CifarDir, type Split } from './reader.ts';
import { imagesAt, TEST_FILE, TRAIN_FILE, type RecordSet } from './records.ts';
import { fractionIndices } from './subset.ts';
import { SYNTHETIC_DEFAULTS, writeSynthetic } from './synthetic.ts';
import type { ImageSet, LabelSet, TrainTestSets } from './types.ts';

/**
 * The data folder of an experiment, checked: for 'synthetic', the set in its folder (the default
 * set is generated there first when the folder holds none); for 'cifar100', the downloaded files.
 */
function experimentDir(dataset: DatasetConfig): CifarDir {
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
  return openCifarDir(dir);
}

/**
 * Makes or checks the data folder of every distinct data set: a runner calls it before starting
 * roles on this machine, so a missing CIFAR-100 stops a sweep with one line instead of failing
 * every run.
 */
export function prepareDatasets(datasets: Iterable<DatasetConfig>): void {
  const seen = new Set<string>();
  for (const dataset of datasets) {
    const key = `${dataset.name}:${datasetDir(dataset)}`;
    if (!seen.has(key)) {
      seen.add(key);
      experimentDir(dataset);
    }
  }
}

/** Each split is cut to the fraction with its own seed, the same on every role. */
const FRACTION_SEED: Record<Split, (seed: number) => number> = { train: (seed) => seed, test: (seed) => seed + 1 };

/** One split cut to `dataset.fraction` (seeded, class-stratified): its records and the indices kept. */
function experimentSplit(d: CifarDir, dataset: DatasetConfig, seed: number, split: Split): { records: RecordSet; kept: Int32Array | undefined } {
  const records = readCifarSplit(d, split);
  return { records, kept: dataset.fraction === 1 ? undefined : fractionIndices(records, dataset.fraction, FRACTION_SEED[split](seed)) };
}

function imagesOf(d: CifarDir, dataset: DatasetConfig, seed: number, split: Split): ImageSet {
  const { records, kept } = experimentSplit(d, dataset, seed, split);
  return imagesAt(records, kept);
}

/** Both splits of the experiment's data set with their images. */
export function loadForExperiment(dataset: DatasetConfig, seed: number): TrainTestSets {
  const d = experimentDir(dataset);
  const sets = { train: imagesOf(d, dataset, seed, 'train'), test: imagesOf(d, dataset, seed, 'test'), classNames: d.classNames };
  return d.coarseNames ? { ...sets, coarseNames: d.coarseNames } : sets;
}

/** What a trainer trains on: the training split, as loadForExperiment cuts it. */
export function loadTrainSet(dataset: DatasetConfig, seed: number): ImageSet {
  return imagesOf(experimentDir(dataset), dataset, seed, 'train');
}

/** What an aggregator needs: the test split's images, and the training split's labels (its shard statistics). */
export function loadForAggregator(dataset: DatasetConfig, seed: number): { train: LabelSet; test: ImageSet } {
  const d = experimentDir(dataset);
  const { records, kept } = experimentSplit(d, dataset, seed, 'train');
  const labels = kept ? Uint8Array.from(kept, (i) => records.labels[i]) : records.labels;
  return { train: { count: labels.length, labels, numClasses: records.numClasses }, test: imagesOf(d, dataset, seed, 'test') };
}

/** The training indices of trainer `shard` of `worldSize` under the configured partition. */
export function shardIndices(train: LabelSet, dataset: DatasetConfig, worldSize: number, shard: number, seed: number): Int32Array {
  if (!Number.isInteger(shard) || shard < 0 || shard >= worldSize) {
    throw new FedsliceError('FEDSLICE_ERR_PARTITION', `shard ${shard} is outside [0, ${worldSize}); pass a shard below the world size`);
  }
  return partition(dataset.partition, train.labels, worldSize, { seed, alpha: dataset.alpha })[shard];
}
