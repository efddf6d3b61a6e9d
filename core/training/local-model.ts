/**
 * A trainer's model for its whole life: one variable and Adam's two moments per parameter tensor,
 * allocated once and overwritten by each task. The wasm heap grows and never shrinks, so tensors
 * allocated afresh every round would make each round's peak a permanent one; held here, the
 * trainer's memory after round 1 stays flat.
 */
import * as tf from '../compute/tf.ts';
import { floatView } from '../compute/tensor-views.ts';
import { releasePackedWeights } from '../compute/packed-weights.ts';
import type { ParamTensors } from '../model/network.ts';
import type { Weights } from '../model/tensor.ts';
import { AdamState, type AdamHyper, type AdamSlot } from './adam.ts';

interface Slot extends AdamSlot {
  name: string;
  weight: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
}

export class LocalModel {
  private slots: Slot[] = [];
  private readonly adam = new AdamState();

  /** Takes `weights` as the starting point and resets Adam; the arrays are copied, not kept. */
  load(weights: Weights): void {
    if (!this.fits(weights)) {
      this.dispose();
      const zeros = (shape: number[], trainable: boolean) => tf.tidy(() => tf.variable(tf.zeros(shape, 'float32'), trainable, undefined, 'float32'));
      this.slots = weights.map((t) => ({ name: t.name, weight: zeros(t.shape, true), m: zeros(t.shape, false), v: zeros(t.shape, false) }));
    }
    this.slots.forEach((s, i) => {
      write(s.weight, weights[i].data);
      clear(s.m);
      clear(s.v);
    });
    this.adam.reset();
  }

  get variables(): tf.Variable[] {
    return this.slots.map((s) => s.weight);
  }

  /** (parameter name, variable) in parameter order. */
  named(): [string, tf.Variable][] {
    return this.slots.map((s) => [s.name, s.weight]);
  }

  /** The variables by parameter name, for the forward pass. */
  params(): ParamTensors {
    return new Map(this.slots.map((s) => [s.name, s.weight]));
  }

  /**
   * Starts one Adam step taken a parameter at a time: `update(name, grad)` every parameter once, in
   * any order, as soon as its gradient exists; `end()` checks that none was missed or repeated.
   */
  beginStep(hyper: AdamHyper): { update: (name: string, grad: tf.Tensor) => void; end: () => void } {
    const step = this.adam.begin(hyper);
    const pending = new Map(this.slots.map((s) => [s.name, s]));
    return {
      update: (name, grad) => {
        const slot = pending.get(name);
        if (!slot) throw new Error(`Adam step: ${name} is not a parameter of this model, or was already updated`);
        pending.delete(name);
        step.update(slot, grad);
      },
      end: () => {
        if (pending.size > 0) throw new Error(`Adam step: no gradient for ${[...pending.keys()].join(', ')}`);
        step.end();
      },
    };
  }

  /** The current weights as new arrays. */
  weights(): Weights {
    return this.slots.map((s) => ({ name: s.name, shape: [...s.weight.shape], data: read(s.weight) }));
  }

  /**
   * Overwrites each of `start`'s arrays with (current - start): the update a trainer sends,
   * computed where the starting weights already are, without another model-sized array.
   */
  deltaInPlace(start: Weights): Weights {
    if (!this.fits(start)) throw new Error('deltaInPlace: the starting weights are not the ones this model was loaded with');
    this.slots.forEach((s, i) => {
      const out = start[i].data;
      const now = floatView(s.weight) ?? read(s.weight);
      for (let k = 0; k < out.length; k++) out[k] = now[k] - out[k];
    });
    return start;
  }

  dispose(): void {
    for (const s of this.slots) tf.dispose([s.weight, s.m, s.v]);
    this.slots = [];
  }

  private fits(weights: Weights): boolean {
    return (
      weights.length === this.slots.length &&
      weights.every((t, i) => t.name === this.slots[i].name && t.shape.length === this.slots[i].weight.shape.length && t.shape.every((d, j) => d === this.slots[i].weight.shape[j]))
    );
  }
}

function clear(v: tf.Variable): void {
  const view = floatView(v);
  if (view) view.fill(0);
  else assignDisposing(v, tf.zerosLike(v));
}

/** Copies `data` into the variable's own block (see core/training/adam.ts on why weights stay put), its packed copies dropped first. */
function write(v: tf.Variable, data: Float32Array): void {
  releasePackedWeights([v]);
  const view = floatView(v);
  if (view) view.set(data);
  else assignDisposing(v, tf.tensor(data, v.shape, 'float32'));
}

function assignDisposing(v: tf.Variable, value: tf.Tensor): void {
  v.assign(value);
  value.dispose();
}

function read(v: tf.Variable): Float32Array {
  const data = v.dataSync();
  // dataSync hands back a copy on every backend we run on except cpu, where it is the storage itself
  return data instanceof Float32Array && floatView(v) !== data ? data : new Float32Array(data);
}
