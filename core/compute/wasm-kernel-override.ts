/**
 * One of the wasm backend's kernels replaced by ours, and put back: the register / unregister pair
 * each kernel module here exports. `make` is given wasm's own kernel (ours falls back to it where it
 * does not apply) and returns ours, or null where the backend lacks something ours needs.
 */
import { getKernel, registerKernel, unregisterKernel, type KernelConfig, type KernelFunc } from './tf.ts';

export interface KernelOverride {
  /** Replace wasm's kernel with ours (idempotent; nothing where wasm has no such kernel). */
  register(): void;
  /** Put wasm's own kernel back (for comparisons). */
  unregister(): void;
  /** wasm's own kernel, whether ours is registered or not (undefined where wasm has none). */
  own(): KernelConfig | undefined;
}

export function wasmKernelOverride(kernelName: string, make: (own: KernelConfig) => KernelFunc | null): KernelOverride {
  let original: KernelConfig | undefined;
  return {
    register() {
      if (original) return;
      const own = getKernel(kernelName, 'wasm');
      const ours = own ? make(own) : null;
      if (!own || !ours) return;
      original = own;
      unregisterKernel(kernelName, 'wasm');
      registerKernel({ kernelName, backendName: 'wasm', kernelFunc: ours });
    },
    unregister() {
      if (!original) return;
      unregisterKernel(kernelName, 'wasm');
      registerKernel(original);
      original = undefined;
    },
    own: () => original ?? getKernel(kernelName, 'wasm'),
  };
}
