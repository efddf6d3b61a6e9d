/**
 * Training results are unchanged on a fixed seed: the batches byte for byte, and the losses and
 * per-tensor weight changes of 10 steps within float tolerance, against a run recorded before the
 * speed work (test/fixtures/train-golden.json, made by test/fixtures/train-golden-run.ts).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/backend.ts';
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
    expect(now.losses).toHaveLength(recorded.losses.length);
    now.losses.forEach((l, i) => expect(Math.abs(l - recorded.losses[i])).toBeLessThan(1e-4));
    expect(Math.abs(now.trainLoss - recorded.trainLoss)).toBeLessThan(1e-4);
  });

  it('moves every parameter tensor the same way within float tolerance', () => {
    expect(Object.keys(now.deltas)).toEqual(Object.keys(recorded.deltas));
    for (const [name, [sum, abs]] of Object.entries(recorded.deltas)) {
      const [nowSum, nowAbs] = now.deltas[name];
      // Adam steps are ~lr per weight whatever the gradient's size, so compare against the total movement
      expect(Math.abs(nowSum - sum), `${name} sum`).toBeLessThan(1e-3 * abs + 1e-6);
      expect(Math.abs(nowAbs - abs), `${name} |sum|`).toBeLessThan(1e-3 * abs + 1e-6);
    }
  });
});
