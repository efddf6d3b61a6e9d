/**
 * Identity for the wasm backend as a shared reference instead of a copy. tfjs's gradient tape
 * keeps every input an op needs for its backward pass as a clone (engine.saveTensorsForBackwardMode,
 * an Identity), and wasm's own Identity copies the bytes: each step held a second copy of every
 * activation and of every weight a layer reads (201 MB for the three 4096x4096 dense weights at
 * full width) until the gradients were done, and the heap, which never shrinks, kept that peak.
 * The cpu backend shares the storage (a reference count on the data); so does this. Nothing writes
 * into a tensor while the tape may still read it: Adam writes a weight in place only once the step
 * has no further use for it, and its moments, which no op reads (core/training/adam.ts).
 */
import { Identity, type DataId, type KernelConfig, type KernelFunc, type TensorInfo } from './tf.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';

interface RefCountingBackend {
  incRef(dataId: DataId): void;
}

interface Args {
  inputs: { x: TensorInfo };
  backend: RefCountingBackend;
}

function shared(own: KernelConfig): KernelFunc {
  return (params) => {
    const { inputs, backend } = params as unknown as Args;
    const { x } = inputs;
    // strings live outside the heap; wasm's kernel handles them
    if (x.dtype === 'string') return own.kernelFunc(params) as TensorInfo;
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}

const override = wasmKernelOverride(Identity, shared);

/** Replace wasm's Identity with the shared reference above (idempotent). */
export const registerWasmIdentity = (): void => override.register();

/** Put wasm's own Identity back (for comparisons). */
export const unregisterWasmIdentity = (): void => override.unregister();
