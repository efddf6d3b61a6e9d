/**
 * Add, Multiply and Sub for the wasm backend as one SIMD pass on the calling thread, where each
 * operand is the whole output, a row repeated ([..., c] against [c]: bias adds), a column repeated
 * ([..., n, c] against [..., n, 1]: the loss's log-softmax and its gradient) or one value. wasm's own
 * kernels run these through XNNPACK's broadcasting binary op on its thread pool, whose worker then
 * spins and takes the second core from our helper thread in the convolutions that follow; a column
 * broadcast alone cost ~0.4 ms of CPU a call against ~0.05 here. Each output is the same single f32
 * sum, product or difference, so the bits are wasm's (test/add-kernel.test.ts,
 * test/mul-sub-kernel.test.ts); other shapes and dtypes go to wasm's own kernel.
 * FEDSLICE_SIMD_MUL_SUB=off keeps wasm's own Multiply and Sub.
 *
 * A function per op and operand kind ('vv' two rows, 'vs' a row and one value, 'sv' one value and
 * a row; a sum or product is always taken as 'vs'): (a, b, out, rows, rowBytes, vecBytes, aRowBytes, bRowBytes) computes rows of rowBytes
 * bytes, the first vecBytes (a multiple of 16) four lanes at a time and the rest one by one; an
 * operand's row r starts aRowBytes (bRowBytes) times r after its pointer (0: the same row each time).
 */
import { Add, backend_util, Multiply, Sub, util, type KernelConfig, type KernelFunc, type TensorInfo } from './tf.ts';
import { backendKernel, type HeapBackend } from './backend-kernel.ts';
import {
  I32, f32add, f32load, f32mul, f32store, f32sub, fadd, fmul, forFrom, forLoop, fsub, get, iadd, imul, load, loadSplatAt, set, store,
  type Code, type WasmFunction,
} from './wasm-asm.ts';
import { wasmKernelOverride } from './wasm-kernel-override.ts';

type RowsKernel = (a: number, b: number, out: number, rows: number, rowBytes: number, vecBytes: number, aRowBytes: number, bRowBytes: number) => void;
type Kind = 'vv' | 'vs' | 'sv';
interface Op {
  name: string;
  lanes: (a: Code, b: Code) => Code;
  one: (a: Code, b: Code) => Code;
  /** a op b = b op a: taken row first where one operand is a single value, as XNNPACK takes it. */
  commutative: boolean;
}

const ADD: Op = { name: 'add', lanes: fadd, one: f32add, commutative: true };
const MUL: Op = { name: 'mul', lanes: fmul, one: f32mul, commutative: true };
const SUB: Op = { name: 'sub', lanes: fsub, one: f32sub, commutative: false };

function rowsFunction(op: Op, kind: Kind): WasmFunction {
  const [A, B, OUT, ROWS, ROW_BYTES, VEC_BYTES, A_ROW, B_ROW] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [R, I, PA, PB, PO] = [8, 9, 10, 11, 12];
  const lanesOf = (p: number, row: boolean) => (row ? load(iadd(get(p), get(I))) : loadSplatAt(get(p), 0));
  const oneOf = (p: number, row: boolean) => f32load(row ? iadd(get(p), get(I)) : get(p));
  const [aRow, bRow] = [kind !== 'sv', kind !== 'vs'];
  const perRow = [
    ...iadd(get(A), imul(get(R), get(A_ROW))), ...set(PA),
    ...iadd(get(B), imul(get(R), get(B_ROW))), ...set(PB),
    ...iadd(get(OUT), imul(get(R), get(ROW_BYTES))), ...set(PO),
    ...forLoop(I, get(VEC_BYTES), 16, store(iadd(get(PO), get(I)), op.lanes(lanesOf(PA, aRow), lanesOf(PB, bRow)))),
    ...forFrom(I, get(VEC_BYTES), get(ROW_BYTES), 4, f32store(iadd(get(PO), get(I)), op.one(oneOf(PA, aRow), oneOf(PB, bRow)))),
  ];
  return { name: `${op.name}_${kind}`, params: Array<number>(8).fill(I32), locals: [[5, I32]], code: forLoop(R, get(ROWS), 1, perRow) };
}

const kernels = new Map<string, () => RowsKernel | null>();
for (const op of [ADD, MUL, SUB]) for (const kind of ['vv', 'vs', 'sv'] as const) if (!op.commutative || kind !== 'sv') kernels.set(`${op.name}_${kind}`, backendKernel<RowsKernel>(() => rowsFunction(op, kind)));

/** How the pass walks two operands: rows of `columns` outputs, and where each operand's rows start. */
interface Plan {
  kind: Kind;
  rows: number;
  columns: number;
  /** Elements between one row of a (b) and the next: the row length, or 0 for the same row again. */
  aRow: number;
  bRow: number;
}

const isRowOf = (small: number[], columns: number) => small.length >= 1 && small[small.length - 1] === columns && small.slice(0, -1).every((d) => d === 1);
const isColumnOf = (small: number[], big: number[]) =>
  small.length === big.length && big.length >= 2 && small[small.length - 1] === 1 && small.slice(0, -1).every((d, i) => d === big[i]);

/** The plan for a (op) b with the output of `size` elements, or null where the pass does not apply. */
export function planOf(a: number[], b: number[], size: number): Plan | null {
  const [aSize, bSize] = [util.sizeFromShape(a), util.sizeFromShape(b)];
  if (size === 0) return null;
  if (aSize === size && bSize === size && size > 1) return { kind: 'vv', rows: 1, columns: size, aRow: 0, bRow: 0 };
  // one value against one value: a is the one repeated, as XNNPACK has it
  const bigIsA = bSize !== size;
  const [big, small] = bigIsA ? [a, b] : [b, a];
  if (util.sizeFromShape(big) !== size) return null;
  const columns = big[big.length - 1] ?? 1;
  let plan: Plan | null = null;
  if (util.sizeFromShape(small) === 1) plan = { kind: 'vs', rows: 1, columns: size, aRow: 0, bRow: 0 };
  else if (isRowOf(small, columns)) plan = { kind: 'vv', rows: size / columns, columns, aRow: columns, bRow: 0 };
  else if (isColumnOf(small, big)) plan = { kind: 'vs', rows: size / columns, columns, aRow: columns, bRow: 1 };
  if (!plan || bigIsA) return plan;
  // the one-value or repeated operand is a: mirror the plan
  return { ...plan, kind: plan.kind === 'vs' ? 'sv' : plan.kind, aRow: plan.bRow, bRow: plan.aRow };
}

interface Args {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: HeapBackend;
}

function simdRows(op: Op, own: KernelConfig): KernelFunc {
  return (params) => {
    const { inputs, backend } = params as unknown as Args;
    const { a, b } = inputs;
    const fallback = () => own.kernelFunc(params) as TensorInfo;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback();
    const shape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const plan = planOf(a.shape, b.shape, util.sizeFromShape(shape));
    // XNNPACK takes the row, then the repeated value, in a sum or product: which NaN of two is kept
    const swap = op.commutative && plan?.kind === 'sv';
    const kernel = plan ? kernels.get(`${op.name}_${swap ? 'vs' : plan.kind}`)?.() : null;
    if (!plan || !kernel) return fallback();
    const out = backend.makeOutput(shape, 'float32');
    // views after makeOutput: an allocation may grow the heap and detach older views
    const [aAt, bAt, outAt] = [a, b, out].map((t) => backend.typedArrayFromHeap(t).byteOffset);
    const rowBytes = 4 * plan.columns;
    if (swap) kernel(bAt, aAt, outAt, plan.rows, rowBytes, rowBytes & ~15, 4 * plan.bRow, 4 * plan.aRow);
    else kernel(aAt, bAt, outAt, plan.rows, rowBytes, rowBytes & ~15, 4 * plan.aRow, 4 * plan.bRow);
    return out;
  };
}

const addOverride = wasmKernelOverride(Add, (own) => simdRows(ADD, own));
const mulSubOverrides = [wasmKernelOverride(Multiply, (own) => simdRows(MUL, own)), wasmKernelOverride(Sub, (own) => simdRows(SUB, own))];

/** Replace wasm's Add with the pass above (idempotent). */
export const registerWasmAdd = (): void => addOverride.register();

/** Put wasm's own Add back (for comparisons). */
export const unregisterWasmAdd = (): void => addOverride.unregister();

/** Replace wasm's Multiply and Sub with the passes above (idempotent); FEDSLICE_SIMD_MUL_SUB=off keeps wasm's own. */
export const registerWasmMulSub = (): void => {
  if (process.env.FEDSLICE_SIMD_MUL_SUB !== 'off') for (const o of mulSubOverrides) o.register();
};

/** Put wasm's own Multiply and Sub back (for comparisons). */
export const unregisterWasmMulSub = (): void => {
  for (const o of mulSubOverrides) o.unregister();
};
