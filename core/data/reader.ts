/** Reads a CIFAR-100 binary folder (official, or a synthetic set in the same layout) with clear errors. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FedsliceError } from '../errors.ts';
import { readManifest } from './manifest.ts';
import {
  CIFAR100_COARSE_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR100_TEST_RECORDS,
  CIFAR100_TRAIN_RECORDS,
  COARSE_NAMES_FILE,
  FINE_NAMES_FILE,
  imagesAt,
  parseNames,
  readLabels,
  RECORD_BYTES,
  TEST_FILE,
  TRAIN_FILE,
  type RecordSet,
} from './records.ts';
import type { ImageSet, TrainTestSets } from './types.ts';

/** What a folder must hold: record counts per split and the class counts. */
export interface SetLayout {
  kind: 'cifar100' | 'synthetic';
  trainRecords: number;
  testRecords: number;
  numClasses: number;
  /** null: any coarse label byte is accepted (synthetic sets derive their own). */
  numCoarse: number | null;
}

export const CIFAR100_LAYOUT: SetLayout = {
  kind: 'cifar100',
  trainRecords: CIFAR100_TRAIN_RECORDS,
  testRecords: CIFAR100_TEST_RECORDS,
  numClasses: CIFAR100_FINE_CLASSES,
  numCoarse: CIFAR100_COARSE_CLASSES,
};

const fmt = (n: number) => n.toLocaleString('en-US');

function missingHint(dir: string): string {
  return `run \`fedslice data download --dir ${dir}\` (or \`fedslice data synth --dir ${dir}\` for the synthetic set)`;
}

/** The layout `dir` must have: the synthetic manifest's when there is one, else official CIFAR-100. */
export function layoutOf(dir: string): SetLayout {
  const m = readManifest(dir);
  if (!m) return CIFAR100_LAYOUT;
  return { kind: 'synthetic', trainRecords: m.trainCount, testRecords: m.testCount, numClasses: m.numClasses, numCoarse: null };
}

/** Reads one .bin split, checking its size against `records` and every label against the class counts; images stay in the file until copied out (imagesAt). */
export function readSplitRecords(path: string, records: number, layout: SetLayout, dir: string): RecordSet {
  if (!existsSync(path)) throw new FedsliceError('FEDSLICE_ERR_DATA_MISSING', `${path} is missing; ${missingHint(dir)}`);
  const size = statSync(path).size;
  const expected = records * RECORD_BYTES;
  if (size !== expected) {
    const what = size < expected ? 'truncated' : 'too large';
    throw new FedsliceError(
      'FEDSLICE_ERR_DATA_SIZE',
      `${path} is ${fmt(size)} bytes but must be ${fmt(expected)} (${fmt(records)} records of ${fmt(RECORD_BYTES)} bytes): the file is ${what} or not ${layout.kind === 'cifar100' ? 'CIFAR-100 binary' : 'this synthetic set'}; ${missingHint(dir)} again`,
    );
  }
  const set = readLabels(path, records, layout.numClasses);
  for (let i = 0; i < set.count; i++) {
    if (set.labels[i] >= layout.numClasses) {
      throw new FedsliceError('FEDSLICE_ERR_DATA_LABEL', `${path}: record ${i} has fine label ${set.labels[i]}, outside [0, ${layout.numClasses}); the file is corrupt, ${missingHint(dir)} again`);
    }
    if (layout.numCoarse !== null && set.coarseLabels[i] >= layout.numCoarse) {
      throw new FedsliceError('FEDSLICE_ERR_DATA_LABEL', `${path}: record ${i} has coarse label ${set.coarseLabels[i]}, outside [0, ${layout.numCoarse}); the file is corrupt, ${missingHint(dir)} again`);
    }
  }
  return set;
}

/** Reads one .bin split with its images, checked as readSplitRecords checks it. */
export function readSplit(path: string, records: number, layout: SetLayout, dir: string): ImageSet {
  return imagesAt(readSplitRecords(path, records, layout, dir));
}

function readNames(path: string, expected: number | null, dir: string, required: boolean): string[] | undefined {
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new FedsliceError('FEDSLICE_ERR_DATA_MISSING', `${path} is missing; ${missingHint(dir)}`);
  }
  const names = parseNames(readFileSync(path, 'utf8'));
  if (expected !== null && names.length !== expected) {
    throw new FedsliceError('FEDSLICE_ERR_DATA_NAMES', `${path} has ${names.length} names but must have ${expected}; ${missingHint(dir)} again`);
  }
  return names;
}

export type Split = 'train' | 'test';

/** A data folder whose layout and label names have been checked: its splits are read from it one by one. */
export interface CifarDir {
  dir: string;
  layout: SetLayout;
  classNames: string[];
  coarseNames?: string[];
}

/** Checks `dir` and reads its label names, against `layout` (by default: the synthetic manifest's, else official CIFAR-100 sizes). */
export function openCifarDir(dir: string, layout?: SetLayout): CifarDir {
  if (!existsSync(dir)) throw new FedsliceError('FEDSLICE_ERR_DATA_MISSING', `data folder ${dir} does not exist; ${missingHint(dir)}`);
  const l = layout ?? layoutOf(dir);
  const classNames = readNames(join(dir, FINE_NAMES_FILE), l.numClasses, dir, true)!;
  const coarseNames = readNames(join(dir, COARSE_NAMES_FILE), l.numCoarse, dir, false);
  return coarseNames ? { dir, layout: l, classNames, coarseNames } : { dir, layout: l, classNames };
}

/** The records of one split (train.bin or test.bin), checked; images stay in them until copied out (imagesAt). */
export function readCifarSplit(d: CifarDir, split: Split): RecordSet {
  return split === 'train'
    ? readSplitRecords(join(d.dir, TRAIN_FILE), d.layout.trainRecords, d.layout, d.dir)
    : readSplitRecords(join(d.dir, TEST_FILE), d.layout.testRecords, d.layout, d.dir);
}

/** Reads train.bin, test.bin, fine_label_names.txt (and coarse_label_names.txt if present) from `dir`, checked as openCifarDir checks it. */
export function loadCifarDir(dir: string, layout?: SetLayout): TrainTestSets {
  const d = openCifarDir(dir, layout);
  const sets = { train: imagesAt(readCifarSplit(d, 'train')), test: imagesAt(readCifarSplit(d, 'test')), classNames: d.classNames };
  return d.coarseNames ? { ...sets, coarseNames: d.coarseNames } : sets;
}
