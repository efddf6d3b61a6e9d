/**
 * Local training, the reference recipe: Adam re-created every call (moments reset each round), L2
 * weight decay added to the gradient, seeded shuffling per (seed, round), `epochs` passes over the
 * shard with a final partial batch. Weights come in and go out as Float32Array; the input is not
 * modified and no tensor outlives the call.
 */
import * as tf from '@tensorflow/tfjs';
import { allocBatch, epochOrder, fillBatch } from '../data/batches.ts';
import { IMAGE_CHANNELS, IMAGE_SIDE, type ImageSet } from '../data/types.ts';
import { FedsliceError } from '../errors.ts';
import type { LayerSpec } from '../model/spec.ts';
import { forward, nllLoss } from '../model/network.ts';
import { Rng } from '../rng.ts';
import type { Weights } from '../model/tensor.ts';
import type { TrainConfig } from '../config.ts';
import { StepMeter, autoEverySteps, type StepReport, type TrainerRoundStats } from './step-meter.ts';

/** The config's train section as training uses it (Adam is the only optimizer). */
export type TrainHyper = Omit<TrainConfig, 'optimizer'>;

export interface TrainProgress {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
}

export interface TrainArgs {
  layers: LayerSpec[];
  weights: Weights;
  data: ImageSet;
  indices: Int32Array;
  hyper: TrainHyper;
  seed: number;
  round: number;
  onProgress?: (p: TrainProgress) => void;
  /** The step log: called every `everySteps` steps (default: about 30 points per call) and at the last step. */
  stepLog?: { everySteps?: number; onReport: (r: StepReport) => void };
}

export interface TrainResult {
  weights: Weights;
  numSamples: number;
  /** Mean loss over the samples of the last epoch. */
  trainLoss: number;
  seconds: number;
  samplesPerSecond: number;
  steps: number;
  /** Step latency percentiles, data-loading share and memory of this call. */
  stats: TrainerRoundStats;
}

/** PyTorch's Adam defaults (tfjs would otherwise use epsilon 1e-7). */
const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

const FLOATS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE * IMAGE_CHANNELS;

function checkArgs({ indices, data, hyper }: TrainArgs): void {
  if (indices.length === 0) throw new FedsliceError('FEDSLICE_ERR_TRAIN', 'the training shard is empty; give every trainer at least one image');
  for (const i of indices) {
    if (i < 0 || i >= data.count) throw new FedsliceError('FEDSLICE_ERR_TRAIN', `shard index ${i} is outside the training set of ${data.count} images`);
  }
  if (!(hyper.batchSize >= 1) || !(hyper.epochs >= 1)) {
    throw new FedsliceError('FEDSLICE_ERR_TRAIN', `batchSize ${hyper.batchSize} and epochs ${hyper.epochs} must both be at least 1`);
  }
}

/** Optimizer steps per epoch on a shard of `shardSize` images: full passes unless capped. */
export function stepsPerEpoch(hyper: TrainHyper, shardSize: number): number {
  const fullSteps = Math.ceil(shardSize / hyper.batchSize);
  return Math.min(fullSteps, hyper.maxStepsPerEpoch ?? fullSteps);
}

/** Optimizer steps one training call takes on a shard of `shardSize` images. */
export function stepsPerCall(hyper: TrainHyper, shardSize: number): number {
  return hyper.epochs * stepsPerEpoch(hyper, shardSize);
}

/** Lets sockets (pings, messages) be served between steps. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function trainLocal(args: TrainArgs): Promise<TrainResult> {
  checkArgs(args);
  const { layers, weights, data, indices, hyper, seed, round } = args;
  const started = performance.now();
  const names = weights.map((t) => t.name);
  // inside tidy so the initial-value tensors are released (a variable only shares their data)
  const vars = weights.map((t) => tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape, 'float32'), true)));
  const byName = new Map(names.map((n, i) => [n, vars[i] as tf.Tensor]));
  const optimizer = tf.train.adam(hyper.learningRate, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
  const shuffleRng = Rng.derive(seed, `shuffle/round${round}`);
  const augmentRng = hyper.augment ? Rng.derive(seed, `augment/round${round}`) : null;
  const dropoutRng = Rng.derive(seed, `dropout/round${round}`);
  const batch = allocBatch(hyper.batchSize);
  const epochSteps = stepsPerEpoch(hyper, indices.length);
  const totalSteps = stepsPerCall(hyper, indices.length);
  const meter = new StepMeter({
    totalSteps,
    learningRate: hyper.learningRate,
    everySteps: args.stepLog ? (args.stepLog.everySteps ?? autoEverySteps(totalSteps)) : 0,
    ...(args.stepLog ? { onReport: args.stepLog.onReport } : {}),
  });
  let numSamples = 0;
  let steps = 0;
  let epochLoss = 0;
  let epochSamples = 0;
  try {
    for (let epoch = 0; epoch < hyper.epochs; epoch++) {
      const order = epochOrder(indices, shuffleRng);
      epochLoss = 0;
      epochSamples = 0;
      for (let step = 0; step < epochSteps; step++) {
        const start = step * hyper.batchSize;
        const size = Math.min(hyper.batchSize, order.length - start);
        meter.startStep();
        fillBatch(data, order, start, size, augmentRng, batch);
        meter.batchReady();
        const loss = tf.tidy(() => {
          const x = tf.tensor4d(batch.x.subarray(0, size * FLOATS_PER_IMAGE), [size, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]);
          const y = tf.tensor1d(batch.y.subarray(0, size), 'int32');
          const { value, grads } = tf.variableGrads(() => nllLoss(forward(layers, byName, x, { dropout: dropoutRng }), y), vars);
          const decayed = names.map((_, i) => {
            const v = vars[i];
            const g = grads[v.name];
            return { name: v.name, tensor: hyper.weightDecay > 0 ? tf.add(g, tf.mul(v, hyper.weightDecay)) : g };
          });
          optimizer.applyGradients(decayed);
          meter.inStep();
          return value;
        });
        const lossValue = (await loss.data())[0];
        loss.dispose();
        if (!Number.isFinite(lossValue)) {
          throw new FedsliceError('FEDSLICE_ERR_TRAIN_DIVERGED', `training loss became ${lossValue} at round ${round}, epoch ${epoch}, step ${step}; lower the learning rate`);
        }
        epochLoss += lossValue * size;
        epochSamples += size;
        numSamples += size;
        steps++;
        meter.endStep(epoch, lossValue, size);
        args.onProgress?.({ epoch, step, steps: epochSteps, loss: lossValue });
        await yieldToEventLoop();
      }
    }
    const trained: Weights = weights.map((t, i) => ({
      name: t.name,
      shape: [...t.shape],
      data: new Float32Array(vars[i].dataSync() as Float32Array),
    }));
    const stats = meter.finish();
    const seconds = (performance.now() - started) / 1000;
    return { weights: trained, numSamples, trainLoss: epochLoss / epochSamples, seconds, samplesPerSecond: numSamples / seconds, steps, stats };
  } finally {
    optimizer.dispose();
    tf.dispose(vars);
  }
}
