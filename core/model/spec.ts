/**
 * The reference AlexNet as data: every layer's name, kind, units and how slicing cuts it.
 * Weights use TensorFlow.js layouts: conv kernels [kh, kw, in, out], dense kernels [in, out],
 * biases [out]. PyTorch names are used throughout (conv1.weight, fc4.bias, ...); checkpoints
 * convert layouts, never names.
 */

export type LayerKind = 'conv' | 'dense';
/** 'out': the slice keeps a range of output units; 'in': a range of input units (bias kept whole). */
export type SplitKind = 'out' | 'in';

export interface LayerSpec {
  name: string;
  kind: LayerKind;
  inUnits: number;
  outUnits: number;
  kernel: number; // 1 for dense
  padding: number; // 0 for dense
  split: SplitKind;
  poolAfter: boolean;
  reluAfter: boolean;
  dropoutAfter: boolean;
}

export interface ModelShape {
  width: number;
  numClasses: number;
}

/** Reference units at width 1; every hidden layer scales with width. */
const BASE = { c1: 96, c2: 256, c3: 384, c4: 384, c5: 256, c6: 256, fc: 4096 } as const;
/** Spatial size after the three 2x2 pools on 32x32 inputs. */
export const FINAL_SPATIAL = 4;
export const INPUT_SIZE = 32;
export const INPUT_CHANNELS = 3;

export function scaledUnits(base: number, width: number): number {
  const n = base * width;
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(
      `model.width ${width} gives ${n} units for a ${base}-unit layer; choose a width such as 1, 1/2, 1/4 or 1/8 that makes every layer a whole number of units`,
    );
  }
  return n;
}

export function alexnetLayers({ width, numClasses }: ModelShape): LayerSpec[] {
  const u = (b: number) => scaledUnits(b, width);
  const c1 = u(BASE.c1), c2 = u(BASE.c2), c3 = u(BASE.c3), c4 = u(BASE.c4), c5 = u(BASE.c5), c6 = u(BASE.c6);
  const fc = u(BASE.fc);
  const conv = (name: string, i: number, o: number, k: number, split: SplitKind, poolAfter: boolean): LayerSpec => ({
    name, kind: 'conv', inUnits: i, outUnits: o, kernel: k, padding: (k - 1) / 2, split, poolAfter, reluAfter: true, dropoutAfter: false,
  });
  const dense = (name: string, i: number, o: number, split: SplitKind, last = false): LayerSpec => ({
    name, kind: 'dense', inUnits: i, outUnits: o, kernel: 1, padding: 0, split, poolAfter: false, reluAfter: !last, dropoutAfter: !last,
  });
  return [
    conv('conv1', INPUT_CHANNELS, c1, 5, 'out', false),
    conv('conv2', c1, c2, 5, 'in', true),
    conv('conv3', c2, c3, 3, 'out', false),
    conv('conv4', c3, c4, 3, 'in', true),
    conv('conv5', c4, c5, 3, 'out', false),
    conv('conv6', c5, c6, 3, 'in', true),
    dense('fc1', c6 * FINAL_SPATIAL * FINAL_SPATIAL, fc, 'out'),
    dense('fc2', fc, fc, 'in'),
    dense('fc3', fc, fc, 'out'),
    dense('fc4', fc, numClasses, 'in', true),
  ];
}

export function weightShape(l: LayerSpec): number[] {
  return l.kind === 'conv' ? [l.kernel, l.kernel, l.inUnits, l.outUnits] : [l.inUnits, l.outUnits];
}

/** Axis of the weight tensor holding output units / input units. */
export function outAxis(l: LayerSpec): number {
  return l.kind === 'conv' ? 3 : 1;
}
export function inAxis(l: LayerSpec): number {
  return l.kind === 'conv' ? 2 : 0;
}

export interface ParamSpec {
  name: string; // e.g. conv1.weight
  layer: string;
  role: 'weight' | 'bias';
  shape: number[];
}

/** Every parameter tensor in model order: conv1.weight, conv1.bias, conv2.weight, ... */
export function parameterSpecs(layers: LayerSpec[]): ParamSpec[] {
  return layers.flatMap((l) => [
    { name: `${l.name}.weight`, layer: l.name, role: 'weight' as const, shape: weightShape(l) },
    { name: `${l.name}.bias`, layer: l.name, role: 'bias' as const, shape: [l.outUnits] },
  ]);
}

export function parameterCount(layers: LayerSpec[]): number {
  return parameterSpecs(layers).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}
