/** Local training and batched evaluation on the synthetic set: learning, determinism, no tensor leaks. */
import * as tf from '../core/compute/tf.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import type { TrainTestSets } from '../core/data/types.ts';
import { isFedsliceError } from '../core/errors.ts';
import { evaluate } from '../core/training/evaluate.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { range } from '../core/rng.ts';
import { cloneWeights } from '../core/model/tensor.ts';
import { trainLocal, type TrainHyper } from '../core/training/train.ts';
import type { StepReport } from '../core/training/step-meter.ts';

const NUM_CLASSES = 10;
const quick: TrainHyper = { learningRate: 1e-3, weightDecay: 1e-4, batchSize: 16, epochs: 1, augment: true, maxStepsPerEpoch: 3 };

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('trainLocal and evaluate', () => {
  let sets: TrainTestSets;
  beforeAll(async () => {
    await initBackend('wasm');
    sets = generateSynthetic({ numClasses: NUM_CLASSES, trainCount: 1000, testCount: 500, seed: 1 });
  });

  it('same seed and round give identical trained weights; the input weights are left untouched', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    const start = initialWeights(layers, 3);
    const before = cloneWeights(start);
    const args = { layers, weights: start, data: sets.train, indices: range(200), hyper: quick, seed: 9, round: 2 };
    const a = await trainLocal(args);
    const b = await trainLocal(args);
    const otherRound = await trainLocal({ ...args, round: 3 });
    start.forEach((t, i) => expect(sameBytes(t.data, before[i].data)).toBe(true));
    expect(a.weights.map((t) => [t.name, t.shape])).toEqual(start.map((t) => [t.name, t.shape]));
    a.weights.forEach((t, i) => {
      expect(t.data).toBeInstanceOf(Float32Array);
      expect(sameBytes(t.data, b.weights[i].data)).toBe(true);
    });
    expect(a.weights.every((t, i) => sameBytes(t.data, start[i].data))).toBe(false);
    expect(a.weights.every((t, i) => sameBytes(t.data, otherRound.weights[i].data))).toBe(false);
    expect(a.trainLoss).toBe(b.trainLoss);
    expect(a.steps).toBe(3);
    expect(a.numSamples).toBe(48);
  });

  it('runs every epoch over the whole shard, last batch partial, and reports progress', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    const progress: Array<{ epoch: number; step: number; steps: number }> = [];
    const r = await trainLocal({
      layers,
      weights: initialWeights(layers, 1),
      data: sets.train,
      indices: Int32Array.from({ length: 40 }, (_, i) => 100 + i),
      hyper: { ...quick, epochs: 2, maxStepsPerEpoch: undefined },
      seed: 1,
      round: 1,
      onProgress: ({ epoch, step, steps }) => progress.push({ epoch, step, steps }),
    });
    expect(r.steps).toBe(6);
    expect(r.numSamples).toBe(80);
    expect(progress.map((p) => `${p.epoch}:${p.step}/${p.steps}`)).toEqual(['0:0/3', '0:1/3', '0:2/3', '1:0/3', '1:1/3', '1:2/3']);
    expect(Number.isFinite(r.trainLoss) && r.trainLoss > 0).toBe(true);
    expect(r.samplesPerSecond).toBeCloseTo(r.numSamples / r.seconds, 6);
  });

  it('the step log reports every N steps with the interval mean of the losses read back, and changes nothing trained', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    const base = {
      layers,
      weights: initialWeights(layers, 1),
      data: sets.train,
      indices: Int32Array.from({ length: 40 }, (_, i) => 100 + i),
      hyper: { ...quick, epochs: 2, maxStepsPerEpoch: undefined },
      seed: 1,
      round: 1,
    };
    const losses: number[] = [];
    const reports: StepReport[] = [];
    const logged = await trainLocal({ ...base, onProgress: (p) => losses.push(p.loss), stepLog: { everySteps: 4, onReport: (r) => reports.push(r) } });
    const plain = await trainLocal(base);
    logged.weights.forEach((t, i) => expect(sameBytes(t.data, plain.weights[i].data)).toBe(true));
    // 2 epochs of 40 images in batches of 16: 16, 16, 8 per epoch
    expect(reports.map((r) => [r.step, r.epoch, r.samples])).toEqual([
      [4, 1, 56],
      [6, 1, 24],
    ]);
    expect(reports[0].loss).toBeCloseTo((16 * losses[0] + 16 * losses[1] + 8 * losses[2] + 16 * losses[3]) / 56, 5);
    expect(reports[1].loss).toBeCloseTo((16 * losses[4] + 8 * losses[5]) / 24, 5);
    expect(reports.every((r) => r.learningRate === quick.learningRate && r.samplesPerSecond > 0)).toBe(true);
    const s = logged.stats;
    expect(s.steps).toBe(6);
    expect(s.stepP50Seconds).toBeGreaterThan(0);
    expect(s.stepP50Seconds).toBeLessThanOrEqual(s.stepP95Seconds);
    expect(s.stepP95Seconds).toBeLessThanOrEqual(s.stepP99Seconds);
    expect(s.dataLoadShare).toBeGreaterThan(0);
    expect(s.dataLoadShare).toBeLessThan(1);
    // weights and Adam's two moments at least, all float32
    const weightBytes = base.weights.reduce((n, t) => n + t.data.byteLength, 0);
    expect(s.tensorBytes).toBeGreaterThanOrEqual(3 * weightBytes);
    expect(s.gpuBytes).toBeNull(); // wasm reports no GPU memory
  });

  it('evaluation is batched: any batch size gives the same loss and accuracy', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    const weights = initialWeights(layers, 2);
    const a = await evaluate({ layers, weights, data: sets.test, batchSize: 500 });
    const b = await evaluate({ layers, weights, data: sets.test, batchSize: 37 });
    expect(a.count).toBe(500);
    expect(b.loss).toBeCloseTo(a.loss, 5);
    expect(b.accuracy).toBe(a.accuracy);
    expect(a.loss).toBeCloseTo(Math.log(NUM_CLASSES), 1); // an untrained net is near-uniform
  });

  it('leaves the tensor count flat across repeated rounds of training and evaluation', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    let weights = initialWeights(layers, 4);
    const round = async (r: number) => {
      weights = (await trainLocal({ layers, weights, data: sets.train, indices: range(64), hyper: { ...quick, maxStepsPerEpoch: 2 }, seed: 4, round: r })).weights;
      await evaluate({ layers, weights, data: sets.test, batchSize: 250 });
    };
    await round(1);
    const after1 = tf.memory().numTensors;
    for (let r = 2; r <= 4; r++) await round(r);
    expect(tf.memory().numTensors).toBe(after1);
  });

  it('rejects an empty shard and out-of-range indices with a clear error', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    const base = { layers, weights: initialWeights(layers, 1), data: sets.train, hyper: quick, seed: 1, round: 1 };
    for (const indices of [new Int32Array(0), Int32Array.from([0, 5000])]) {
      let caught: unknown;
      try {
        await trainLocal({ ...base, indices });
      } catch (e) {
        caught = e;
      }
      expect(isFedsliceError(caught)).toBe(true);
    }
  });

  it('training a width-1/8 model for 200 steps raises test accuracy far above chance', async () => {
    const layers = alexnetLayers({ width: 1 / 8, numClasses: NUM_CLASSES });
    const start = initialWeights(layers, 5);
    const before = await evaluate({ layers, weights: start, data: sets.test, batchSize: 250 });
    const r = await trainLocal({
      layers,
      weights: start,
      data: sets.train,
      indices: range(640),
      hyper: { learningRate: 1e-3, weightDecay: 1e-4, batchSize: 32, epochs: 10, augment: false },
      seed: 1,
      round: 1,
    });
    const after = await evaluate({ layers, weights: r.weights, data: sets.test, batchSize: 250 });
    expect(r.steps).toBe(200);
    expect(before.accuracy).toBeLessThan(0.2);
    expect(after.accuracy).toBeGreaterThan(3 / NUM_CLASSES);
    expect(after.loss).toBeLessThan(before.loss);
  }, 600_000); // ~60 s alone; several times that beside the end-to-end tests on 2 cores (425 s at load 35)
});
