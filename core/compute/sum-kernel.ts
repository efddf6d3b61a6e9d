/**
 * Sum for the wasm backend over every axis but the last, the reduction of every bias gradient
 * ([batch, h, w, c] -> [c], [batch, units] -> [units]). wasm's own kernel first transposes the
 * input so the reduced axes are innermost (a naive strided 2-D transpose of the whole gradient),
 * then sums each column in order; here the columns are summed in place, four at a time, in the same
 * order (core/compute/simd-sum-module.ts), so the results are the same bits. Other sums, other
 * dtypes and a last axis that is not a multiple of 4 go to wasm's own kernel.
 */
import type { HeapBackend } from './backend-kernel.ts';
import { Sum, util, type KernelConfig, type KernelFunc, type TensorInfo } from './tf.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';
import { wasmColSumKernel } from './simd-sum-module.ts';

interface Args {
  inputs: { x: TensorInfo };
  backend: HeapBackend;
  attrs: { axis: number | number[]; keepDims: boolean };
}

/**
 * True when `axis` is 0 .. rank-2 in this order (negatives allowed): wasm's kernel sums in the order
 * the axes are given, which is the row order here only for ascending axes (a gradient's are).
 */
function allButLast(axis: number | number[], shape: number[]): boolean {
  const axes = util.parseAxisParam(axis, shape);
  return shape.length >= 2 && axes.length === shape.length - 1 && axes.every((a, i) => a === i);
}

function columnSum(own: KernelConfig): KernelFunc {
  return (params) => {
    const { inputs, backend, attrs } = params as unknown as Args;
    const { x } = inputs;
    const columns = x.shape[x.shape.length - 1];
    const kernel = x.dtype === 'float32' && columns % 4 === 0 && allButLast(attrs.axis, x.shape) ? wasmColSumKernel() : null;
    if (!kernel) return own.kernelFunc(params) as TensorInfo;
    const rows = util.sizeFromShape(x.shape) / columns;
    const shape = attrs.keepDims ? [...x.shape.slice(0, -1).map(() => 1), columns] : [columns];
    const out = backend.makeOutput(shape, 'float32');
    // views after makeOutput: an allocation may grow the heap and detach older views
    const sums = backend.typedArrayFromHeap(out);
    sums.fill(0);
    kernel(backend.typedArrayFromHeap(x).byteOffset, sums.byteOffset, rows, 4 * columns);
    return out;
  };
}

const override = wasmKernelOverride(Sum, columnSum);

/** Replace wasm's Sum with the column sum above (idempotent). */
export const registerWasmSum = (): void => override.register();

/** Put wasm's own Sum back (for comparisons). */
export const unregisterWasmSum = (): void => override.unregister();
