/**
 * Local training, the reference recipe: Adam reset every call (moments zeroed each round), L2
 * weight decay added to the gradient, seeded shuffling per (seed, round), `epochs` passes over the
 * shard with a final partial batch. `trainModel` trains a LocalModel a trainer keeps for its whole
 * life (the weights stay in it); `trainLocal` is the same on a model of its own, with weights in and
 * out as Float32Array: the input is not modified and no tensor outlives the call.
 */
import * as tf from '../compute/tf.ts';
import { allocBatch, epochOrder, fillBatch } from '../data/batches.ts';
import { IMAGE_CHANNELS, IMAGE_SIDE, type ImageSet } from '../data/types.ts';
import { FedsliceError } from '../errors.ts';
import type { LayerSpec } from '../model/spec.ts';
import { forward, nllLoss, ownWeightGrads } from '../model/network.ts';
import { Rng } from '../rng.ts';
import type { Weights } from '../model/tensor.ts';
import type { TrainConfig } from '../config.ts';
import { LocalModel } from './local-model.ts';
import type { AdamHyper } from './adam.ts';
import { releasePackedWeights } from '../compute/packed-weights.ts';
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
  /**
   * Called at the phase boundaries of the call: 'variables' (weights loaded), 'first step' (after
   * the first step: the phase's peak is the step's, the largest of the call), 'trained'. For the memory probe.
   */
  onPhase?: (phase: 'variables' | 'first step' | 'trained') => void;
  /** The step log: called every `everySteps` steps (default: about 30 points per call) and at the last step. */
  stepLog?: { everySteps?: number; onReport: (r: StepReport) => void };
}

export interface TrainSummary {
  numSamples: number;
  /** Mean loss over the samples of the last epoch. */
  trainLoss: number;
  seconds: number;
  samplesPerSecond: number;
  steps: number;
  /** Step latency percentiles, data-loading share and memory of this call. */
  stats: TrainerRoundStats;
}

export interface TrainResult extends TrainSummary {
  weights: Weights;
}

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
  const model = new LocalModel();
  try {
    const summary = await trainModel(model, args);
    return { ...summary, weights: model.weights() };
  } finally {
    model.dispose();
  }
}

/**
 * One Adam step on a batch; returns the loss. The dense weights' gradients are applied as soon as
 * the backward pass computes them (ForwardOptions.onWeightGrad) and freed, the rest once the tape is
 * done; every parameter's update is the same either way. The weights' packed copies are released
 * after the forward pass, as the weights change before they are read again.
 */
export function trainStep(model: LocalModel, layers: LayerSpec[], x: tf.Tensor4D, y: tf.Tensor1D, hyper: AdamHyper, dropout: Rng | null): tf.Scalar {
  return tf.tidy(() => {
    const handed = new Set(ownWeightGrads(layers));
    const taped = model.named().filter(([name]) => !handed.has(name));
    const adam = model.beginStep(hyper);
    const onWeightGrad = (name: string, grad: tf.Tensor) => {
      adam.update(name, grad);
      grad.dispose();
    };
    const { value, grads } = tf.variableGrads(() => {
      const loss = nllLoss(forward(layers, model.params(), x, { dropout, onWeightGrad }), y);
      releasePackedWeights(model.variables);
      return loss;
    }, taped.map(([, v]) => v));
    for (const [name, v] of taped) adam.update(name, grads[v.name]);
    adam.end();
    return value;
  });
}

/** Loads `args.weights` into `model` and trains it; the trained weights stay in the model. */
export async function trainModel(model: LocalModel, args: TrainArgs): Promise<TrainSummary> {
  checkArgs(args);
  const { layers, weights, data, indices, hyper, seed, round } = args;
  const started = performance.now();
  model.load(weights);
  args.onPhase?.('variables');
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
        const value = trainStep(model, layers, x, y, hyper, dropoutRng);
        meter.inStep();
        if (steps === 0) args.onPhase?.('first step');
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
  args.onPhase?.('trained');
  const stats = meter.finish();
  const seconds = (performance.now() - started) / 1000;
  return { numSamples, trainLoss: epochLoss / epochSamples, seconds, samplesPerSecond: numSamples / seconds, steps, stats };
}
