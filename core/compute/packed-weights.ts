/**
 * The wasm backend caches an XNNPACK operator for each weight tensor a product or a convolution
 * reads, keyed by the tensor's id, and the operator holds its own packed copy of the weights until
 * the tensor is disposed: 201 MB for the three 4096x4096 dense weights at full width. A trainer's
 * weights are replaced by Adam after every step, so the copies packed by the forward pass are never
 * used again, yet they stayed alive through the whole backward pass, the step's memory peak.
 * `releasePackedWeights` frees them once the forward pass is done: the backend's disposal of the
 * tensor's id (which deletes the operators cached for it), then the same id registered again over
 * the same memory, so the tensor itself is untouched. A later use simply packs afresh.
 */
import * as tf from './tf.ts';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

function isWasmBackend(b: object): b is BackendWasm {
  return 'dataIdMap' in b && 'wasm' in b && typeof b.wasm === 'object' && b.wasm !== null && 'tfjs' in b.wasm;
}

/** Drops the operators (and packed weights) the wasm backend cached for `tensors`; elsewhere does nothing. */
export function releasePackedWeights(tensors: readonly tf.Tensor[]): void {
  const backend: object = tf.backend();
  if (tf.getBackend() !== 'wasm' || !isWasmBackend(backend)) return;
  for (const t of tensors) {
    const data = backend.dataIdMap.get(t.dataId);
    if (!data || t.dtype === 'string') continue;
    backend.wasm.tfjs.disposeData(data.id);
    backend.wasm.tfjs.registerTensor(data.id, t.size, data.memoryOffset);
  }
}
