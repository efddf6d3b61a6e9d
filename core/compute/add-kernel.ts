/**
 * Add for the wasm backend as one f32x4 pass where it is a bias add ([..., c] + [c], either order)
 * or two tensors of one shape (the tape summing gradients): wasm's own kernel runs these through
 * its general broadcasting binary op, ~2% of a width-1/8 training step for the nine bias adds alone.
 * Each output is the same single f32 addition, so the bits are the same (test/add-kernel.test.ts);
 * other shapes and dtypes, and a last axis that is not a multiple of 4, go to wasm's own kernel.
 *
 * addRows(a, b, out, rows, rowBytes): out[r] = a[r] + b for each of `rows` rows of `rowBytes` (a
 * multiple of 16); two tensors of one shape are one row.
 */
import { Add, util, type KernelConfig, type KernelFunc, type TensorInfo } from './tf.ts';
import { backendKernel, type HeapBackend } from './backend-kernel.ts';
import { I32, fadd, forLoop, get, iadd, imul, load, set, store, type WasmFunction } from './wasm-asm.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';

type AddRowsKernel = (a: number, b: number, out: number, rows: number, rowBytes: number) => void;

function addRowsFunction(): WasmFunction {
  const [A, B, OUT, ROWS, ROW_BYTES] = [0, 1, 2, 3, 4];
  const [R, I, AR] = [5, 6, 7];
  const perRow = [
    ...imul(get(R), get(ROW_BYTES)), ...set(AR),
    ...forLoop(I, get(ROW_BYTES), 16, store(iadd(get(OUT), iadd(get(AR), get(I))), fadd(load(iadd(get(A), iadd(get(AR), get(I)))), load(iadd(get(B), get(I)))))),
  ];
  return { name: 'addRows', params: Array<number>(5).fill(I32), locals: [[3, I32]], code: forLoop(R, get(ROWS), 1, perRow) };
}

const wasmAddRows = backendKernel<AddRowsKernel>(addRowsFunction);

interface Args {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: HeapBackend;
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function simdAdd(own: KernelConfig): KernelFunc {
  return (params) => {
    const { inputs, backend } = params as unknown as Args;
    const { a, b } = inputs;
    const fallback = () => own.kernelFunc(params) as TensorInfo;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback();
    const [big, small] = b.shape.length > a.shape.length ? [b, a] : [a, b];
    const size = util.sizeFromShape(big.shape);
    const columns = big.shape[big.shape.length - 1] ?? 1;
    const same = sameShape(a.shape, b.shape);
    const bias = !same && small.shape.length === 1 && small.shape[0] === columns && big.shape.length >= 2;
    if ((!same && !bias) || (same ? size : columns) % 4 !== 0 || size === 0) return fallback();
    const kernel = wasmAddRows();
    if (!kernel) return fallback();
    const out = backend.makeOutput([...big.shape], 'float32');
    // views after makeOutput: an allocation may grow the heap and detach older views
    const [bigAt, smallAt, outAt] = [big, small, out].map((t) => backend.typedArrayFromHeap(t).byteOffset);
    if (same) kernel(bigAt, smallAt, outAt, 1, 4 * size);
    else kernel(bigAt, smallAt, outAt, size / columns, 4 * columns);
    return out;
  };
}

const override = wasmKernelOverride(Add, simdAdd);

/** Replace wasm's Add with the pass above (idempotent). */
export const registerWasmAdd = (): void => override.register();

/** Put wasm's own Add back (for comparisons). */
export const unregisterWasmAdd = (): void => override.unregister();
