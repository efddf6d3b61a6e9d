/**
 * Initial weights in pure JS (the aggregator needs no tfjs for this): PyTorch's default init for
 * Conv2d and Linear, weight and bias uniform in +-1/sqrt(fan_in) (kaiming_uniform with a=sqrt(5)).
 * Each tensor draws from its own stream derived from (seed, name), so one tensor's values do not
 * depend on the others.
 */
import { parameterSpecs, type LayerSpec } from './spec.ts';
import { Rng } from '../rng.ts';
import { sizeOf, type Weights } from './tensor.ts';

export function fanIn(layer: LayerSpec): number {
  return layer.inUnits * layer.kernel * layer.kernel;
}

/**
 * 'pytorch' is the reference. 'kaiming' (He uniform for the layers a ReLU follows: weights in
 * +-sqrt(6/fan_in), biases zero) keeps the signal's scale through the layers, so training leaves
 * the initial plateau sooner; PyTorch's default shrinks the activations ~2.4x per layer. The output
 * layer keeps PyTorch's bound (bias zero): He's would start with logits so large that the first
 * steps go to shrinking them.
 */
export type InitScheme = 'pytorch' | 'kaiming';

export function initialWeights(layers: LayerSpec[], seed: number, scheme: InitScheme = 'pytorch'): Weights {
  const byName = new Map(layers.map((l) => [l.name, l]));
  return parameterSpecs(layers).map((p) => {
    const layer = byName.get(p.layer)!;
    const n = fanIn(layer);
    const bound = scheme === 'pytorch' ? 1 / Math.sqrt(n) : p.role !== 'weight' ? 0 : layer.reluAfter ? Math.sqrt(6 / n) : 1 / Math.sqrt(n);
    const rng = Rng.derive(seed, `init/${p.name}`);
    const data = new Float32Array(sizeOf(p.shape));
    for (let i = 0; i < data.length; i++) data[i] = (rng.next() * 2 - 1) * bound;
    return { name: p.name, shape: [...p.shape], data };
  });
}
