/**
 * A deterministic synthetic image set with learnable, non-trivial class structure, so experiments
 * run with no download. Each class has a prototype: a coloured oriented grating plus a coloured
 * Gaussian blob. Each image is its class prototype with a random shift, grating phase jitter and
 * contrast, on a random background colour, plus per-pixel noise.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FedsliceError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { writeFileAtomic } from '../atomic-file.ts';
import { MANIFEST_FORMAT, manifestPath, readManifest, type SyntheticManifest } from './manifest.ts';
import { COARSE_NAMES_FILE, encodeRecords, FINE_NAMES_FILE, TEST_FILE, TRAIN_FILE } from './records.ts';
import { IMAGE_BYTES, IMAGE_SIDE, type ImageSet, type TrainTestSets } from './types.ts';

export interface SyntheticOptions {
  numClasses: number;
  trainCount: number;
  testCount: number;
  seed: number;
}

export const SYNTHETIC_DEFAULTS: SyntheticOptions = { numClasses: 10, trainCount: 10_000, testCount: 2_000, seed: 0 };
/** Synthetic coarse labels group this many consecutive classes, as CIFAR-100 groups 5 fine classes. */
export const SYNTHETIC_CLASSES_PER_COARSE = 5;

interface ClassPrototype {
  /** Grating direction (unit vector) scaled by its spatial frequency in radians per pixel. */
  kx: number;
  ky: number;
  phase: number;
  gratingColour: [number, number, number];
  blobX: number;
  blobY: number;
  blobInvTwoSigma2: number;
  blobColour: [number, number, number];
}

const PLANE = IMAGE_SIDE * IMAGE_SIDE;
/** Ranges of the per-image nuisances; tuned so a nearest-class-mean classifier is well above chance but far from perfect. */
const MAX_SHIFT = 4;
const PHASE_JITTER = Math.PI / 2;
const NOISE_AMPLITUDE = 0.22;
const MIN_CONTRAST = 0.35;

function colour(rng: Rng): [number, number, number] {
  // signed colour directions, so a grating can be e.g. "red up, blue down"
  return [rng.next() * 2 - 1, rng.next() * 2 - 1, rng.next() * 2 - 1];
}

function makePrototypes(numClasses: number, seed: number): ClassPrototype[] {
  const rng = Rng.derive(seed, 'synthetic-prototypes');
  const protos: ClassPrototype[] = [];
  for (let c = 0; c < numClasses; c++) {
    // spread orientations evenly-ish so classes differ, with a random offset per class
    const theta = (Math.PI * (c + rng.next() * 0.5)) / Math.max(1, numClasses) + rng.next() * 0.2;
    const cyclesPerImage = 1.5 + rng.next() * 3;
    const k = (2 * Math.PI * cyclesPerImage) / IMAGE_SIDE;
    const sigma = 3 + rng.next() * 4;
    protos.push({
      kx: k * Math.cos(theta),
      ky: k * Math.sin(theta),
      phase: rng.next() * 2 * Math.PI,
      gratingColour: colour(rng),
      blobX: 8 + rng.next() * 16,
      blobY: 8 + rng.next() * 16,
      blobInvTwoSigma2: 1 / (2 * sigma * sigma),
      blobColour: colour(rng),
    });
  }
  return protos;
}

function validate(opts: SyntheticOptions): void {
  const { numClasses, trainCount, testCount, seed } = opts;
  if (!Number.isInteger(numClasses) || numClasses < 2 || numClasses > 256) {
    throw new FedsliceError('FEDSLICE_ERR_SYNTH_OPTIONS', `synthetic set: classes must be an integer in [2, 256], got ${numClasses}`);
  }
  for (const [name, v] of [['train', trainCount], ['test', testCount]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new FedsliceError('FEDSLICE_ERR_SYNTH_OPTIONS', `synthetic set: ${name} count must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isInteger(seed) || seed < 0) {
    throw new FedsliceError('FEDSLICE_ERR_SYNTH_OPTIONS', `synthetic set: seed must be a non-negative integer, got ${seed}`);
  }
}

function clampByte(v: number): number {
  const b = Math.round(v * 255);
  return b < 0 ? 0 : b > 255 ? 255 : b;
}

function generateSplit(protos: ClassPrototype[], count: number, rng: Rng): ImageSet {
  const numClasses = protos.length;
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % numClasses;
  rng.shuffle(labels);
  const coarseLabels = new Uint8Array(count);
  const images = new Uint8Array(count * IMAGE_BYTES);
  const grating = new Float32Array(PLANE);
  const blob = new Float32Array(PLANE);
  for (let i = 0; i < count; i++) {
    const label = labels[i];
    coarseLabels[i] = Math.floor(label / SYNTHETIC_CLASSES_PER_COARSE);
    const p = protos[label];
    const sx = rng.next() * 2 * MAX_SHIFT - MAX_SHIFT;
    const sy = rng.next() * 2 * MAX_SHIFT - MAX_SHIFT;
    const phase = p.phase + (rng.next() * 2 - 1) * PHASE_JITTER;
    const contrast = MIN_CONTRAST + rng.next() * (1 - MIN_CONTRAST);
    const background = [0.25 + rng.next() * 0.5, 0.25 + rng.next() * 0.5, 0.25 + rng.next() * 0.5];
    const bx = p.blobX + sx;
    const by = p.blobY + sy;
    for (let y = 0; y < IMAGE_SIDE; y++) {
      for (let x = 0; x < IMAGE_SIDE; x++) {
        const q = y * IMAGE_SIDE + x;
        grating[q] = Math.sin(p.kx * (x - sx) + p.ky * (y - sy) + phase);
        const ddx = x - bx;
        const ddy = y - by;
        blob[q] = Math.exp(-(ddx * ddx + ddy * ddy) * p.blobInvTwoSigma2);
      }
    }
    const base = i * IMAGE_BYTES;
    for (let ch = 0; ch < 3; ch++) {
      const g = 0.22 * contrast * p.gratingColour[ch];
      const b = 0.3 * contrast * p.blobColour[ch];
      const bg = background[ch];
      const off = base + ch * PLANE;
      for (let q = 0; q < PLANE; q++) {
        // triangular noise: cheaper than Gaussian, same role
        const noise = (rng.next() + rng.next() - 1) * NOISE_AMPLITUDE;
        images[off + q] = clampByte(bg + g * grating[q] + b * blob[q] + noise);
      }
    }
  }
  return { count, images, labels, numClasses, coarseLabels };
}

export function syntheticClassNames(numClasses: number): string[] {
  const width = String(numClasses - 1).length;
  return Array.from({ length: numClasses }, (_, c) => `class_${String(c).padStart(width, '0')}`);
}

export function syntheticCoarseNames(numClasses: number): string[] {
  const n = Math.ceil(numClasses / SYNTHETIC_CLASSES_PER_COARSE);
  return Array.from({ length: n }, (_, c) => `group_${c}`);
}

/** The synthetic set in memory; the same options always give the same bytes. */
export function generateSynthetic(opts: SyntheticOptions): TrainTestSets {
  validate(opts);
  const protos = makePrototypes(opts.numClasses, opts.seed);
  return {
    train: generateSplit(protos, opts.trainCount, Rng.derive(opts.seed, 'synthetic-train')),
    test: generateSplit(protos, opts.testCount, Rng.derive(opts.seed, 'synthetic-test')),
    classNames: syntheticClassNames(opts.numClasses),
    coarseNames: syntheticCoarseNames(opts.numClasses),
  };
}

function sameManifest(dir: string, opts: SyntheticOptions): boolean {
  try {
    const m = readManifest(dir);
    return !!m && m.numClasses === opts.numClasses && m.trainCount === opts.trainCount && m.testCount === opts.testCount && m.seed === opts.seed;
  } catch {
    return false; // an unreadable manifest is simply replaced
  }
}

/**
 * Generates the set and writes train.bin, test.bin and the label-name files to `dir`, each
 * atomically, then the manifest last: concurrent writers of the same options produce the same
 * bytes, and a reader that sees the manifest sees a complete set.
 */
export function writeSynthetic(dir: string, opts: Partial<SyntheticOptions> = {}): TrainTestSets {
  const full: SyntheticOptions = { ...SYNTHETIC_DEFAULTS, ...opts };
  const sets = generateSynthetic(full);
  if (existsSync(manifestPath(dir)) && !sameManifest(dir, full)) {
    // a different set is being replaced: drop its manifest first so no reader pairs it with the new files
    rmSync(manifestPath(dir), { force: true });
  }
  writeFileAtomic(join(dir, TRAIN_FILE), encodeRecords(sets.train));
  writeFileAtomic(join(dir, TEST_FILE), encodeRecords(sets.test));
  writeFileAtomic(join(dir, FINE_NAMES_FILE), sets.classNames.join('\n') + '\n');
  writeFileAtomic(join(dir, COARSE_NAMES_FILE), sets.coarseNames!.join('\n') + '\n');
  const manifest: SyntheticManifest = {
    format: MANIFEST_FORMAT,
    numClasses: full.numClasses,
    trainCount: full.trainCount,
    testCount: full.testCount,
    seed: full.seed,
  };
  writeFileAtomic(manifestPath(dir), JSON.stringify(manifest, null, 2) + '\n');
  return sets;
}
