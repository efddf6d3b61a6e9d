/**
 * The manifest a synthetic set carries beside its .bin files. Its presence tells the reader the set
 * is synthetic (any whole-record counts and class count it names); its absence means official
 * CIFAR-100 sizes. It is written last, so a manifest also marks a finished set.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FedsliceError } from '../errors.ts';

export const MANIFEST_FILE = 'fedslice-synthetic.json';
export const MANIFEST_FORMAT = 'fedslice-synthetic/1';

export interface SyntheticManifest {
  format: typeof MANIFEST_FORMAT;
  numClasses: number;
  trainCount: number;
  testCount: number;
  seed: number;
}

export function manifestPath(dir: string): string {
  return join(dir, MANIFEST_FILE);
}

/** The manifest of the synthetic set in `dir`, or null when `dir` holds none. */
export function readManifest(dir: string): SyntheticManifest | null {
  const path = manifestPath(dir);
  if (!existsSync(path)) return null;
  let m: Partial<SyntheticManifest>;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FedsliceError('FEDSLICE_ERR_DATA_MANIFEST', `${path} is not valid JSON (${(e as Error).message}); delete ${dir} and run \`fedslice data synth --dir ${dir}\` again`);
  }
  const intOk = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
  if (m.format !== MANIFEST_FORMAT || !intOk(m.numClasses, 2) || m.numClasses! > 256 || !intOk(m.trainCount, 1) || !intOk(m.testCount, 1) || !intOk(m.seed, 0)) {
    throw new FedsliceError('FEDSLICE_ERR_DATA_MANIFEST', `${path} is not a valid ${MANIFEST_FORMAT} manifest; delete ${dir} and run \`fedslice data synth --dir ${dir}\` again`);
  }
  return m as SyntheticManifest;
}
