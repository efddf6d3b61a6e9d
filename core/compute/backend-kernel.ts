/**
 * Hand-written wasm functions over the wasm backend's own memory, so they work on tensors where
 * the backend keeps them (core/compute/wasm-asm.ts writes the functions).
 */
import * as tf from './tf.ts';
import type { TensorInfo } from './tf.ts';
import { instantiateOver, type WasmFunction } from './wasm-asm.ts';

/** What kernels over the backend's memory use of the wasm backend: outputs, and views of a tensor's bytes. */
export interface HeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

/**
 * A new tensor holding `x` (NHWC) with zero rows and columns around it (`pad`: top, bottom, left,
 * right): the input of a stride-1 convolution run over an explicitly padded input. The caller
 * disposes it.
 */
export function zeroPaddedCopy(heap: HeapBackend, x: TensorInfo, pad: readonly number[]): TensorInfo {
  const [batch, h, w, c] = x.shape;
  const [top, bottom, left, right] = pad;
  const [hp, wp] = [h + top + bottom, w + left + right];
  const padded = heap.makeOutput([batch, hp, wp, c], 'float32');
  // views are taken after makeOutput: an allocation may grow the heap and detach older views
  const from = heap.typedArrayFromHeap(x);
  const to = heap.typedArrayFromHeap(padded);
  to.fill(0);
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < h; y++) {
      const at = (b * h + y) * w * c;
      to.set(from.subarray(at, at + w * c), ((b * hp + y + top) * wp + left) * c);
    }
  }
  return padded;
}

interface EmscriptenModule {
  wasmMemory?: WebAssembly.Memory; // the threaded build: memory made in JS and shared with the workers
  asm?: { memory?: WebAssembly.Memory }; // the single-threaded build exports its memory
}

/** The current wasm backend's memory, or null on another backend. */
export function wasmBackendMemory(): WebAssembly.Memory | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend: object = tf.backend();
  const module = 'wasm' in backend ? (backend.wasm as EmscriptenModule | undefined) : undefined;
  const memory = module?.wasmMemory ?? module?.asm?.memory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

/**
 * A getter for one hand-written function over the current wasm backend's memory: instantiated once
 * per memory, null on another backend or where the engine cannot compile it.
 */
export function backendKernel<K extends (...args: number[]) => void>(build: () => WasmFunction): () => K | null {
  const made = new WeakMap<WebAssembly.Memory, K | null>();
  return () => {
    const memory = wasmBackendMemory();
    if (!memory) return null;
    if (!made.has(memory)) {
      const fn = build();
      const exported = instantiateOver(memory, [fn])?.[fn.name];
      made.set(memory, typeof exported === 'function' ? (exported as K) : null);
    }
    return made.get(memory) ?? null;
  };
}
