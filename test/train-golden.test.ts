/**
 * Training results are unchanged on a fixed seed: the batches byte for byte, the first-step
 * gradient within float tolerance and the losses of 10 steps within a tolerance that allows for
 * float noise, against a run recorded before the speed work (test/fixtures/train-golden.json,
 * made by test/fixtures/train-golden-run.ts --reference).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { goldenRun, type GoldenRun } from './fixtures/train-golden-run.ts';

const recorded = JSON.parse(readFileSync(new URL('./fixtures/train-golden.json', import.meta.url), 'utf8')) as GoldenRun;

describe('fixed-seed training matches the recorded run', () => {
  let now: GoldenRun;
  beforeAll(async () => {
    await initBackend('wasm');
    now = await goldenRun();
  }, 120_000);

  it('draws the same batches, byte for byte', () => {
    expect(now.batchSha256).toEqual(recorded.batchSha256);
  });

  it('gives the same loss at every step within float tolerance', () => {
    // training amplifies float noise: nudging 1/7 of the initial weights by 1e-6 (relative) moves
    // the 10th loss by 1.7e-4, so a reordered sum in any kernel may too; a wrong gradient moves it by far more
    expect(now.losses).toHaveLength(recorded.losses.length);
    now.losses.forEach((l, i) => expect(Math.abs(l - recorded.losses[i]), `step ${i}`).toBeLessThan(2e-3));
    expect(Math.abs(now.trainLoss - recorded.trainLoss)).toBeLessThan(1e-3);
  });

  it('computes the same first-step gradient for every parameter tensor', () => {
    expect(Object.keys(now.gradients)).toEqual(Object.keys(recorded.gradients));
    for (const [name, [sum, sq, l1, dot]] of Object.entries(recorded.gradients)) {
      const [nowSum, nowSq, nowL1, nowDot] = now.gradients[name];
      expect(Math.abs(nowSum - sum), `${name} sum`).toBeLessThan(1e-4 * l1);
      expect(Math.abs(nowDot - dot), `${name} dot`).toBeLessThan(1e-4 * l1);
      expect(Math.abs(nowL1 - l1), `${name} L1`).toBeLessThan(1e-4 * l1);
      expect(Math.abs(nowSq - sq), `${name} sum of squares`).toBeLessThan(1e-4 * sq);
    }
  });
});
