/**
 * Float32Array views straight over a tensor's storage, so a trainer can overwrite its variables and
 * step its optimizer in place instead of allocating new tensors. Only the wasm and cpu backends keep
 * their data where JS can reach it; on any other backend `floatView` returns null and the caller
 * takes the tf-ops path.
 *
 * A wasm view is over the wasm heap, which moves when the heap grows: take a view, use it, drop it,
 * with no tfjs allocation in between.
 */
import * as tf from './tf.ts';

interface HeapBackend {
  typedArrayFromHeap(t: { shape: number[]; dtype: tf.DataType; dataId: object }): unknown;
}

interface CpuBackend {
  data: { get(dataId: object): { values?: unknown } | undefined };
}

function isHeapBackend(b: object): b is HeapBackend {
  return 'typedArrayFromHeap' in b && typeof b.typedArrayFromHeap === 'function';
}

function isCpuBackend(b: object): b is CpuBackend {
  return 'data' in b && typeof b.data === 'object' && b.data !== null && 'get' in b.data && typeof b.data.get === 'function';
}

/** The float32 storage of `t` as a view (writes change the tensor), or null where the backend hides it. */
export function floatView(t: tf.Tensor): Float32Array | null {
  if (t.dtype !== 'float32' || t.isDisposed) return null;
  const backend: object = tf.backend();
  if (isHeapBackend(backend)) {
    const view = backend.typedArrayFromHeap({ shape: t.shape, dtype: t.dtype, dataId: t.dataId });
    return view instanceof Float32Array ? view : null;
  }
  if (tf.getBackend() === 'cpu' && isCpuBackend(backend)) {
    const values = backend.data.get(t.dataId)?.values;
    return values instanceof Float32Array && values.length === t.size ? values : null;
  }
  return null;
}

/** Bytes the wasm backend's heap holds now (it grows and never shrinks), or null on another backend. */
export function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend: object = tf.backend();
  if (!('wasm' in backend) || typeof backend.wasm !== 'object' || backend.wasm === null || !('HEAPU8' in backend.wasm)) return null;
  const heap = backend.wasm.HEAPU8;
  return heap instanceof Uint8Array ? heap.buffer.byteLength : null;
}
