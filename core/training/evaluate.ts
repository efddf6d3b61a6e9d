/** Batched evaluation without augmentation: mean NLL and accuracy over a whole image set. */
import * as tf from '../compute/tf.ts';
import { allocBatch, fillBatch } from '../data/batches.ts';
import { IMAGE_CHANNELS, IMAGE_SIDE, type ImageSet } from '../data/types.ts';
import { FedsliceError } from '../errors.ts';
import type { LayerSpec } from '../model/spec.ts';
import { forward, type ParamSource } from '../model/network.ts';
import { range } from '../rng.ts';
import type { Weights } from '../model/tensor.ts';

export interface EvaluateArgs {
  layers: LayerSpec[];
  weights: Weights;
  data: ImageSet;
  batchSize: number;
}

export interface EvaluateResult {
  loss: number;
  accuracy: number;
  seconds: number;
  count: number;
}

const FLOATS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE * IMAGE_CHANNELS;

/**
 * Each layer's parameter tensors, made from `weights` as the forward pass reaches the layer and
 * disposed once its product or convolution has run (with the packed copy the wasm backend made of
 * them), so the backend holds one layer's weights at a time instead of a second copy of the model:
 * at full width the aggregator's wasm heap held the model's 0.22 GB beside the JS arrays it merges
 * and sends from. Copying a layer in each batch costs a memcpy of the model per batch against
 * seconds of compute. The disposed space is taken again by the next layer, batch and evaluation in
 * the same order, so the heap does not grow from one evaluation to the next.
 */
function layerByLayer(weights: Weights): { source: ParamSource; afterLayer: (weight: tf.Tensor, bias: tf.Tensor) => void } {
  const byName = new Map(weights.map((t) => [t.name, t]));
  return {
    source: {
      get: (name) => {
        const t = byName.get(name);
        return t && tf.tensor(t.data, t.shape, 'float32');
      },
    },
    afterLayer: (weight, bias) => tf.dispose([weight, bias]),
  };
}

/** Reads `weights` until its promise settles: write nothing over them meanwhile. */
export async function evaluate({ layers, weights, data, batchSize }: EvaluateArgs): Promise<EvaluateResult> {
  if (data.count === 0) throw new FedsliceError('FEDSLICE_ERR_EVAL', 'the evaluation set is empty; check the dataset config');
  if (!(batchSize >= 1)) throw new FedsliceError('FEDSLICE_ERR_EVAL', `eval batch size ${batchSize} must be at least 1`);
  const started = performance.now();
  const order = range(data.count);
  const batch = allocBatch(Math.min(batchSize, data.count));
  const params = layerByLayer(weights);
  let nllSum = 0;
  let correct = 0;
  for (let start = 0; start < data.count; start += batch.y.length) {
    const size = Math.min(batch.y.length, data.count - start);
    fillBatch(data, order, start, size, null, batch);
    const [nll, hits] = tf.tidy(() => {
      const x = tf.tensor4d(batch.x.subarray(0, size * FLOATS_PER_IMAGE), [size, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]);
      const y = tf.tensor1d(batch.y.subarray(0, size), 'int32');
      const logp = forward(layers, params.source, x, { dropout: null, afterLayer: params.afterLayer });
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
  return { loss: nllSum / data.count, accuracy: correct / data.count, seconds: (performance.now() - started) / 1000, count: data.count };
}
