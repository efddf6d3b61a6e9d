/**
 * Adam with L2 weight decay added to the gradient, one parameter at a time. It computes exactly what
 * `tf.train.adam` does after `grad + decay * weight` (the same float32 operations in the same order:
 * every intermediate rounded with Math.fround), but updates the moments and the weights in place,
 * instead of the ~11 model-sized temporaries per parameter that tfjs keeps alive until the whole
 * step ends.
 *
 * Weights in place, not a new tensor each step: the heap's allocator places a new block wherever it
 * finds room, so a model's worth of weights moving every step left the free space cut differently
 * each round, and whenever a large block finds no hole the heap grows for good (it never shrinks; a
 * full-width trainer's grew from 1.22 to 1.34 GB over one 10-round run). Written in place, the weights keep
 * their blocks and every round allocates the same blocks at the same offsets (test/memory.test.ts).
 * Two things make the write safe. The wasm backend caches XNNPACK operators, with the weights packed
 * inside, by tensor id, so the weight's cached operators are dropped before it changes
 * (releasePackedWeights); otherwise the next convolution would read them stale. And a weight is
 * updated only once nothing in the step reads it again: a dense weight's gradient arrives after its
 * layer's input gradient was computed from it, every other gradient after the tape is done.
 *
 * On wasm the views are over the backend's heap and the loop runs as a wasm SIMD kernel
 * (core/compute/simd-adam-module.ts, f32x4 lanes, the same float32 operations: 7.5x less CPU than
 * the JS loop, which rounds through Math.fround at every operation); the JS loop takes the last
 * size % 4 elements, and the whole of each tensor on cpu.
 *
 * Where the backend hides tensor storage (see floatView) the same maths runs as tf ops, one parameter
 * at a time so only one parameter's temporaries are alive.
 */
import * as tf from '../compute/tf.ts';
import { wasmAdamKernel, type AdamKernel } from '../compute/simd-adam-module.ts';
import { floatView } from '../compute/tensor-views.ts';
import { releasePackedWeights } from '../compute/packed-weights.ts';

/** PyTorch's Adam defaults (tfjs would otherwise use epsilon 1e-7). */
export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

const f = Math.fround;

export interface AdamHyper {
  learningRate: number;
  weightDecay: number;
}

/** One parameter: its weights and its two moments, all the same shape. */
export interface AdamSlot {
  weight: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
}

/** The step's scalars, rounded to float32 as tfjs's scalar tensors would be. */
interface StepScalars {
  b1: number;
  b2: number;
  oneMinusB1: number;
  oneMinusB2: number;
  oneMinusAccB1: number;
  oneMinusAccB2: number;
  eps: number;
  negLr: number;
  decay: number;
}

/** Adam's running beta powers; reset at `reset()` (the reference resets the optimizer each round). */
export class AdamState {
  private accB1 = f(ADAM.beta1);
  private accB2 = f(ADAM.beta2);

  reset(): void {
    this.accB1 = f(ADAM.beta1);
    this.accB2 = f(ADAM.beta2);
  }

  /** Applies one step to every slot; `grads[i]` is slot i's gradient (not modified, not disposed). */
  step(slots: readonly AdamSlot[], grads: readonly tf.Tensor[], hyper: AdamHyper): void {
    const step = this.begin(hyper);
    slots.forEach((slot, i) => step.update(slot, grads[i]));
    step.end();
  }

  /**
   * One step taken a parameter at a time, so a gradient can be applied and freed as soon as it
   * exists: `update` every slot once, in any order (each slot's update depends on nothing else),
   * then `end`. The same operations as `step`, so the same bits.
   */
  begin(hyper: AdamHyper): AdamStep {
    const s: StepScalars = {
      b1: f(ADAM.beta1),
      b2: f(ADAM.beta2),
      oneMinusB1: f(1 - ADAM.beta1),
      oneMinusB2: f(1 - ADAM.beta2),
      oneMinusAccB1: f(1 - this.accB1),
      oneMinusAccB2: f(1 - this.accB2),
      eps: f(ADAM.epsilon),
      negLr: f(-hyper.learningRate),
      decay: f(hyper.weightDecay),
    };
    const kernel = simdEnabled ? wasmAdamKernel() : null;
    return {
      update: (slot, grad) => {
        if (!stepViews(slot, grad, s, kernel)) adamOps(slot, grad, s);
      },
      end: () => {
        this.accB1 = f(this.accB1 * f(ADAM.beta1));
        this.accB2 = f(this.accB2 * f(ADAM.beta2));
      },
    };
  }
}

/** A step in progress (AdamState.begin). `grad` is not modified and not disposed. */
export interface AdamStep {
  update(slot: AdamSlot, grad: tf.Tensor): void;
  end(): void;
}

let simdEnabled = true;

/** Run the JS loop on wasm too (false), for comparisons; the SIMD kernel is used by default. */
export function setSimdAdam(enabled: boolean): void {
  simdEnabled = enabled;
}

/** The step over typed-array views; false when the backend gives no views. `kernel`: views are over its memory. */
function stepViews(slot: AdamSlot, grad: tf.Tensor, s: StepScalars, kernel: AdamKernel | null): boolean {
  // operators the backend cached for this weight hold its old values packed: dropped before it changes
  releasePackedWeights([slot.weight]);
  // no tfjs allocation between taking the views and using them: the wasm heap may move when it grows
  const w = floatView(slot.weight);
  const m = floatView(slot.m);
  const v = floatView(slot.v);
  const g = floatView(grad);
  if (w === null || m === null || v === null || g === null) return false;
  let from = 0;
  if (kernel) {
    from = w.length - (w.length % 4);
    // byte offsets in the heap are the kernel's pointers; each lane reads its weight before writing it
    kernel(w.byteOffset, g.byteOffset, m.byteOffset, v.byteOffset, w.byteOffset, 4 * from,
      s.b1, s.b2, s.oneMinusB1, s.oneMinusB2, s.oneMinusAccB1, s.oneMinusAccB2, s.eps, s.negLr, s.decay, s.decay > 0 ? 1 : 0);
  }
  adamOverViews(from, w, g, m, v, w, s);
  return true;
}

/** The step for elements [from, w.length). */
function adamOverViews(from: number, w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, out: Float32Array, s: StepScalars): void {
  const { b1, b2, oneMinusB1, oneMinusB2, oneMinusAccB1, oneMinusAccB2, eps, negLr, decay } = s;
  const decayed = s.decay > 0;
  for (let k = from; k < w.length; k++) {
    const wk = w[k];
    const gk = decayed ? f(g[k] + f(wk * decay)) : g[k];
    const mk = f(f(m[k] * b1) + f(gk * oneMinusB1));
    const vk = f(f(v[k] * b2) + f(f(gk * gk) * oneMinusB2));
    m[k] = mk;
    v[k] = vk;
    const bc1 = f(mk / oneMinusAccB1);
    const bc2 = f(vk / oneMinusAccB2);
    out[k] = f(f(f(bc1 / f(f(Math.sqrt(bc2)) + eps)) * negLr) + wk);
  }
}

/** The same step as tf ops (backends whose storage JS cannot reach). */
function adamOps(slot: AdamSlot, grad: tf.Tensor, s: StepScalars): void {
  const { weight, m, v } = slot;
  tf.tidy(() => {
    const g = s.decay > 0 ? tf.add(grad, tf.mul(weight, s.decay)) : grad;
    const newM = tf.add(tf.mul(m, s.b1), tf.mul(g, s.oneMinusB1));
    const newV = tf.add(tf.mul(v, s.b2), tf.mul(tf.square(g), s.oneMinusB2));
    const bc1 = tf.div(newM, s.oneMinusAccB1);
    const bc2 = tf.div(newV, s.oneMinusAccB2);
    m.assign(newM);
    v.assign(newV);
    weight.assign(tf.add(tf.mul(tf.div(bc1, tf.add(tf.sqrt(bc2), s.eps)), s.negLr), weight));
  });
}
