/** Batched evaluation without augmentation: mean NLL and accuracy over a whole image set. */
import * as tf from '../compute/tf.ts';
import { releasePackedWeights } from '../compute/packed-weights.ts';
import { allocBatch, fillBatch } from '../data/batches.ts';
import { IMAGE_CHANNELS, IMAGE_SIDE, type ImageSet } from '../data/types.ts';
import { FedsliceError } from '../errors.ts';
import type { LayerSpec } from '../model/spec.ts';
import { forward, paramTensors } from '../model/network.ts';
import { range } from '../rng.ts';
import type { Weights } from '../model/tensor.ts';
import type { EvaluationWeights } from './evaluation-weights.ts';

export interface EvaluateArgs {
  layers: LayerSpec[];
  weights: Weights;
  data: ImageSet;
  batchSize: number;
  /** Parameter tensors kept across evaluations (the aggregator's); without, they are made and disposed here. */
  kept?: EvaluationWeights;
}

export interface EvaluateResult {
  loss: number;
  accuracy: number;
  seconds: number;
  count: number;
}

const FLOATS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE * IMAGE_CHANNELS;

/**
 * A layer's packed weight copies (core/compute/packed-weights.ts) go as soon as its product or
 * convolution has run, so a forward pass holds one layer's copy at a time instead of the model's:
 * at full width, batch 64, the wasm heap's peak fell from 0.66 to 0.55 GB. Packing again each
 * batch cost less than the noise of a batch's compute (5.2-5.5 s CPU per batch of 64 against
 * 5.7-5.9 s with the copies kept, in one process, under load).
 */
function releaseLayer(weight: tf.Tensor, bias: tf.Tensor): void {
  releasePackedWeights([weight, bias]);
}

export async function evaluate({ layers, weights, data, batchSize, kept }: EvaluateArgs): Promise<EvaluateResult> {
  if (data.count === 0) throw new FedsliceError('FEDSLICE_ERR_EVAL', 'the evaluation set is empty; check the dataset config');
  if (!(batchSize >= 1)) throw new FedsliceError('FEDSLICE_ERR_EVAL', `eval batch size ${batchSize} must be at least 1`);
  const started = performance.now();
  const params = kept ? kept.take(weights) : paramTensors(weights);
  const order = range(data.count);
  const batch = allocBatch(Math.min(batchSize, data.count));
  let nllSum = 0;
  let correct = 0;
  try {
    for (let start = 0; start < data.count; start += batch.y.length) {
      const size = Math.min(batch.y.length, data.count - start);
      fillBatch(data, order, start, size, null, batch);
      const [nll, hits] = tf.tidy(() => {
        const x = tf.tensor4d(batch.x.subarray(0, size * FLOATS_PER_IMAGE), [size, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]);
        const y = tf.tensor1d(batch.y.subarray(0, size), 'int32');
        const logp = forward(layers, params, x, { dropout: null, afterLayer: releaseLayer });
        const picked = tf.sum(tf.mul(logp, tf.oneHot(y, logp.shape[1])));
        const right = tf.sum(tf.cast(tf.equal(tf.argMax(logp, 1), y), 'float32'));
        return [picked, right];
      });
      const [p, r] = await Promise.all([nll.data(), hits.data()]);
      tf.dispose([nll, hits]);
      nllSum -= p[0];
      correct += r[0];
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    if (kept) kept.done();
    else tf.dispose([...params.values()]);
  }
  return { loss: nllSum / data.count, accuracy: correct / data.count, seconds: (performance.now() - started) / 1000, count: data.count };
}
