/**
 * The AlexNet forward pass in tfjs ops. Layer kinds, kernels, padding, pooling, ReLU and dropout
 * come from the LayerSpecs; unit counts come from the parameter tensors themselves, so a trainer's
 * slice (conv1 3->96/W, conv2 96/W->256, ...) runs through the same code as the full model.
 *
 * The conv output is flattened in PyTorch's (C, H, W) order, so fc1.weight's input axis means the
 * same thing here as in a PyTorch checkpoint.
 */
import * as tf from '../compute/tf.ts';
import { FedsliceError } from '../errors.ts';
import type { LayerSpec } from './spec.ts';
import type { Rng } from '../rng.ts';
import type { Weights } from './tensor.ts';

export const DROPOUT_RATE = 0.5;

/** Parameter tensors by PyTorch name (conv1.weight, conv1.bias, ...). */
export type ParamTensors = Map<string, tf.Tensor>;

/** Where the forward pass gets each layer's parameter tensors: a ParamTensors, or one made per layer. */
export type ParamSource = Pick<ReadonlyMap<string, tf.Tensor>, 'get'>;

export interface ForwardOptions {
  /** Training mode applies dropout with masks drawn from this stream; null means inference. */
  dropout: Rng | null;
  /**
   * Training only: the backward pass hands the weight gradient of each layer `ownWeightGrads` names
   * to this callback as soon as it is computed (the callee owns and disposes it), and the weight is
   * left out of the caller's gradient list. A trainer applies Adam there, so the three 67 MB dense
   * gradients of the full model are freed before the convolutions' backward pass, the step's peak.
   */
  onWeightGrad?: (name: string, grad: tf.Tensor) => void;
  /** Called with a layer's weight and bias once its product or convolution has run. */
  afterLayer?: (weight: tf.Tensor, bias: tf.Tensor) => void;
}

/**
 * The weights whose gradients go to `ForwardOptions.onWeightGrad`: those of the dense layers with a
 * ReLU, which tfjs runs unfused while it records gradients (a product, a bias add, a ReLU).
 */
export function ownWeightGrads(layers: readonly LayerSpec[]): string[] {
  return layers.filter((l) => l.kind === 'dense' && l.reluAfter).map((l) => `${l.name}.weight`);
}

/**
 * x w, whose backward pass computes what tfjs's BatchMatMul gradient computes (dx = dy w^T, then
 * dw = x^T dy: the same ops on the same values) and hands dw to `take` instead of returning it: `w`
 * is not among the tape's sources, so its placeholder gradient is never read. dx is computed before
 * `take` runs, which may replace the variable's weights.
 */
function productHandingGrad(x: tf.Tensor2D, w: tf.Tensor2D, take: (grad: tf.Tensor) => void): tf.Tensor2D {
  // the op's inputs are x and w themselves; customGrad passes them back with the save function last
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[2];
    if (typeof save !== 'function') throw new Error('customGrad passed no save function');
    save([x]);
    return {
      value: tf.matMul(x, w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const dx = tf.matMul(dy as tf.Tensor2D, w, false, true);
        take(tf.matMul(saved[0] as tf.Tensor2D, dy as tf.Tensor2D, true, false));
        return [dx, tf.scalar(0)];
      },
    };
  });
  return op(x, w) as tf.Tensor2D;
}

export function paramTensors(weights: Weights): ParamTensors {
  return new Map(weights.map((t) => [t.name, tf.tensor(t.data, t.shape, 'float32')]));
}

function param(params: ParamSource, name: string): tf.Tensor {
  const t = params.get(name);
  if (!t) throw new FedsliceError('FEDSLICE_ERR_MODEL_PARAMS', `parameter ${name} is missing; the weights must hold every layer's weight and bias`);
  return t;
}

function checkInputUnits(layer: LayerSpec, w: tf.Tensor, b: tf.Tensor, have: number): void {
  const inAxis = layer.kind === 'conv' ? 2 : 0;
  const outUnits = w.shape[w.rank - 1];
  const expectedRank = layer.kind === 'conv' ? 4 : 2;
  if (w.rank !== expectedRank || w.shape[inAxis] !== have || b.rank !== 1 || b.shape[0] !== outUnits) {
    throw new FedsliceError(
      'FEDSLICE_ERR_MODEL_PARAMS',
      `${layer.name}: weight [${w.shape}] and bias [${b.shape}] do not fit an input of ${have} units; the weights must be one consistent slice of the model`,
    );
  }
}

/** Inverted dropout with a mask from `rng`: kept units are scaled by 1/(1-rate). */
function dropout(x: tf.Tensor2D, rng: Rng): tf.Tensor2D {
  const mask = new Float32Array(x.size);
  const keep = 1 / (1 - DROPOUT_RATE);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() >= DROPOUT_RATE ? keep : 0;
  return tf.mul(x, tf.tensor2d(mask, x.shape as [number, number]));
}

/** Log-probabilities [batch, classes] for NHWC images [batch, 32, 32, 3]. */
export function forward(layers: LayerSpec[], params: ParamSource, images: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D {
  return tf.tidy(() => {
    let x: tf.Tensor = images;
    for (const layer of layers) {
      const w = param(params, `${layer.name}.weight`);
      const b = param(params, `${layer.name}.bias`);
      const activation = layer.reluAfter ? 'relu' : 'linear';
      if (layer.kind === 'conv') {
        checkInputUnits(layer, w, b, x.shape[3]!);
        x = tf.fused.conv2d({
          x: x as tf.Tensor4D,
          filter: w as tf.Tensor4D,
          strides: 1,
          pad: layer.padding,
          bias: b,
          activation,
        });
        opts.afterLayer?.(w, b);
        if (layer.poolAfter) x = tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid');
      } else {
        if (x.rank === 4) x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0], -1]);
        checkInputUnits(layer, w, b, x.shape[1]!);
        const take = opts.onWeightGrad;
        if (take && layer.reluAfter) {
          // what tf.fused.matMul runs while gradients are recorded, with the weight gradient handed over
          x = tf.relu(tf.add(productHandingGrad(x as tf.Tensor2D, w as tf.Tensor2D, (g) => take(`${layer.name}.weight`, g)), b));
        } else {
          x = tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b, activation });
        }
        opts.afterLayer?.(w, b);
        if (layer.dropoutAfter && opts.dropout) x = dropout(x as tf.Tensor2D, opts.dropout);
      }
    }
    return tf.logSoftmax(x as tf.Tensor2D);
  });
}

/** Mean negative log-likelihood of int32 labels under log-probabilities. */
export function nllLoss(logProbs: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(logProbs, tf.oneHot(labels, logProbs.shape[1])), 1))));
}
