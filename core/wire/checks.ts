/**
 * What a receiver checks beyond the schema, once it knows what it asked for: an update's tensors
 * against the task's, its sample count and its metrics.
 */
import type { NamedTensor } from '../model/tensor.ts';
import type { MessageOf } from './schema.ts';

/** null when an update's contents are usable for a task with these tensors; else a one-line reason. */
export function checkUpdateContent(msg: MessageOf<'update'>, expected: { name: string; shape: number[] }[]): string | null {
  if (!Number.isInteger(msg.numSamples) || msg.numSamples <= 0) return `numSamples ${msg.numSamples} is not a positive integer`;
  const mismatch = checkTensorsMatch(expected, msg.delta);
  if (mismatch) return mismatch;
  const m = msg.metrics;
  if (![m.trainLoss, m.trainSeconds, m.samplesPerSecond].every(Number.isFinite)) return 'metrics are not finite numbers';
  return null;
}

/** null when `got` has exactly the expected names, order and shapes; else a one-line reason. */
export function checkTensorsMatch(expected: { name: string; shape: number[] }[], got: NamedTensor[]): string | null {
  if (got.length !== expected.length) return `expected ${expected.length} tensors, got ${got.length}`;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const g = got[i];
    if (g.name !== e.name) return `tensor ${i} is ${g.name}, expected ${e.name}`;
    if (g.shape.length !== e.shape.length || g.shape.some((d, j) => d !== e.shape[j])) {
      return `tensor ${e.name} has shape [${g.shape}], expected [${e.shape}]`;
    }
  }
  return null;
}
