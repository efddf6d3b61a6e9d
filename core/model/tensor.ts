/** A named float32 tensor as it is stored, sliced, merged and sent: flat data in row-major order. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Model weights in the model's parameter order (see core/model/spec.ts). */
export type Weights = NamedTensor[];

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function cloneWeights(w: Weights): Weights {
  return w.map((t) => ({ name: t.name, shape: [...t.shape], data: new Float32Array(t.data) }));
}

export function weightsByName(w: Weights): Map<string, NamedTensor> {
  return new Map(w.map((t) => [t.name, t]));
}

export function totalParameters(w: Weights): number {
  return w.reduce((n, t) => n + t.data.length, 0);
}

export function totalBytes(w: Weights): number {
  return w.reduce((n, t) => n + t.data.byteLength, 0);
}

/** a - b, tensor by tensor; shapes and names must match. */
export function subtractWeights(a: Weights, b: Weights): Weights {
  return a.map((t, i) => {
    const u = b[i];
    if (!u || u.name !== t.name || u.data.length !== t.data.length) {
      throw new Error(`cannot subtract weights: tensor ${t.name} has no counterpart of the same size`);
    }
    const out = new Float32Array(t.data.length);
    for (let k = 0; k < out.length; k++) out[k] = t.data[k] - u.data[k];
    return { name: t.name, shape: [...t.shape], data: out };
  });
}
