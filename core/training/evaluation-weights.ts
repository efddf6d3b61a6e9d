/**
 * The parameter tensors of a process's evaluations, kept from one evaluation to the next. The
 * aggregator evaluates a new model every round; tensors allocated afresh each time landed wherever
 * the wasm heap had room after the previous round's frees, and a heap that never shrinks grew with
 * the fragments (0.65 -> 0.78 GB in round 2 at full width). Kept, each round's weights are written
 * over the same storage, and the packed copies the wasm backend makes of them (core/compute/
 * packed-weights.ts) are released when the evaluation ends, so the next write is never read stale
 * and the next evaluation packs into the space this one freed.
 */
import * as tf from '../compute/tf.ts';
import { releasePackedWeights } from '../compute/packed-weights.ts';
import { floatView } from '../compute/tensor-views.ts';
import { paramTensors, type ParamTensors } from '../model/network.ts';
import type { Weights } from '../model/tensor.ts';

export class EvaluationWeights {
  private kept: ParamTensors | null = null;
  private inUse = false;

  /**
   * `weights` as parameter tensors, for one evaluation at a time: written over the kept tensors
   * where every name and shape matches and the backend lets JS write its storage, else new tensors
   * (kept in place of the old ones). Call `done` when the evaluation no longer reads them.
   */
  take(weights: Weights): ParamTensors {
    if (this.inUse) throw new Error('EvaluationWeights: an evaluation is already using the kept weights');
    if (!this.writeOver(weights)) {
      this.dispose();
      this.kept = paramTensors(weights);
    }
    this.inUse = true;
    return this.kept!;
  }

  /** The evaluation is over: the packed copies go, the tensors stay for the next one. */
  done(): void {
    if (this.kept) releasePackedWeights([...this.kept.values()]);
    this.inUse = false;
  }

  dispose(): void {
    if (this.kept) tf.dispose([...this.kept.values()]);
    this.kept = null;
    this.inUse = false;
  }

  private writeOver(weights: Weights): boolean {
    const kept = this.kept;
    if (!kept || kept.size !== weights.length) return false;
    const fits = weights.every((w) => {
      const t = kept.get(w.name);
      return t !== undefined && t.shape.length === w.shape.length && t.shape.every((d, i) => d === w.shape[i]) && floatView(t) !== null;
    });
    if (!fits) return false;
    // each view is used at once: a wasm view is over the heap, which moves when it grows
    for (const w of weights) floatView(kept.get(w.name)!)!.set(w.data);
    return true;
  }
}
