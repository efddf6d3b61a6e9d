/**
 * Checkpoints as safetensors files with PyTorch names and layouts, so `safetensors.torch.load_file`
 * (or a few lines of struct + torch.frombuffer) loads them into the reference AlexNet.
 * Our tensors use TensorFlow.js layouts; on the way out conv kernels go [kh,kw,in,out] ->
 * [out,in,kh,kw] and dense kernels [in,out] -> [out,in]. fc1's input rows need no permutation:
 * core/model/network.ts flattens in PyTorch's (c,h,w) order. Writes are atomic: temp file, fsync,
 * rename; a write that fails (a full disk) removes its temp file and leaves the last checkpoint as it was.
 */
import { readFile } from 'node:fs/promises';
import { FedsliceError } from '../errors.ts';
import { writeFileAtomic } from '../atomic-file.ts';
import { withStorageErrors } from './storage-error.ts';
import { parameterSpecs, type LayerSpec } from '../model/spec.ts';
import type { NamedTensor, Weights } from '../model/tensor.ts';
import { sizeOf } from '../model/tensor.ts';

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** How one of our tensors maps to PyTorch: its torch shape and the element permutation. */
function torchShape(layer: LayerSpec, role: 'weight' | 'bias', shape: number[]): number[] {
  if (role === 'bias') return shape;
  if (layer.kind === 'conv') {
    const [kh, kw, ci, co] = shape;
    return [co, ci, kh, kw];
  }
  const [ni, no] = shape;
  return [no, ni];
}

/**
 * For the elements of torch rows [o0, o1) of a weight (row o: output unit o, the last axis of our
 * layout), in torch order: each one's index in our layout (a gather map).
 */
function gatherMap(layer: LayerSpec, shape: number[], o0: number, o1: number): Int32Array {
  const map = new Int32Array(((o1 - o0) * sizeOf(shape)) / shape[shape.length - 1]);
  let t = 0;
  if (layer.kind === 'conv') {
    const [kh, kw, ci, co] = shape;
    for (let o = o0; o < o1; o++)
      for (let i = 0; i < ci; i++)
        for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) map[t++] = ((y * kw + x) * ci + i) * co + o;
    return map;
  }
  const [ni, no] = shape;
  for (let o = o0; o < o1; o++) for (let i = 0; i < ni; i++) map[t++] = i * no + o;
  return map;
}

/** Floats of PyTorch layout made at a time while a checkpoint is written (4 MB). */
const TORCH_PART_FLOATS = 1 << 20;

/**
 * A tensor in PyTorch's layout, in parts of whole torch rows of about `partFloats` floats, so the
 * transposed copy of a 67 MB dense weight (and its gather map) is never made whole: at full width
 * that copy and its map were 134 MB at the aggregator's checkpoint, its peak phase. Each part is
 * the same storage, refilled: write it before asking for the next.
 */
export function* torchParts(layer: LayerSpec, role: 'weight' | 'bias', t: NamedTensor, partFloats = TORCH_PART_FLOATS): Generator<Float32Array> {
  if (role === 'bias') {
    yield t.data;
    return;
  }
  const units = t.shape[t.shape.length - 1];
  const rowLength = t.data.length / units;
  const rows = Math.max(1, Math.floor(partFloats / rowLength));
  const out = new Float32Array(Math.min(units, rows) * rowLength);
  for (let o0 = 0; o0 < units; o0 += rows) {
    const map = gatherMap(layer, t.shape, o0, Math.min(units, o0 + rows));
    for (let k = 0; k < map.length; k++) out[k] = t.data[map[k]];
    yield out.subarray(0, map.length);
  }
}

function fromTorch(layer: LayerSpec, role: 'weight' | 'bias', shape: number[], data: Float32Array): Float32Array {
  if (role === 'bias') return data;
  const map = gatherMap(layer, shape, 0, shape[shape.length - 1]);
  const out = new Float32Array(data.length);
  for (let k = 0; k < map.length; k++) out[map[k]] = data[k];
  return out;
}

function specsWithLayers(layers: LayerSpec[]) {
  const byName = new Map(layers.map((l) => [l.name, l]));
  return parameterSpecs(layers).map((p) => ({ ...p, layerSpec: byName.get(p.layer)! }));
}

export async function writeCheckpoint(path: string, layers: LayerSpec[], weights: Weights, metadata: Record<string, string>): Promise<void> {
  const specs = specsWithLayers(layers);
  const byName = new Map(weights.map((t) => [t.name, t]));
  const header: Record<string, HeaderEntry | Record<string, string>> = { __metadata__: metadata };
  const tensors: { spec: (typeof specs)[number]; t: NamedTensor }[] = [];
  let offset = 0;
  for (const s of specs) {
    const t = byName.get(s.name);
    if (!t || sizeOf(t.shape) !== sizeOf(s.shape)) throw new Error(`checkpoint: model has no tensor ${s.name} of shape [${s.shape}]`);
    header[s.name] = { dtype: 'F32', shape: torchShape(s.layerSpec, s.role, t.shape), data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
    tensors.push({ spec: s, t });
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  // a part of one tensor in PyTorch's layout at a time: the transposed copy of the model is never held
  function* parts(): Generator<Uint8Array> {
    yield len;
    yield headerBytes;
    for (const { spec, t } of tensors) {
      for (const data of torchParts(spec.layerSpec, spec.role, t)) yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
  }
  withStorageErrors(path, () => writeFileAtomic(path, parts()));
}


export interface Checkpoint {
  weights: Weights;
  metadata: Record<string, string>;
}

export async function readCheckpoint(path: string, layers: LayerSpec[]): Promise<Checkpoint> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new FedsliceError('FEDSLICE_ERR_CHECKPOINT', `cannot read checkpoint ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  const corrupt = (why: string) => new FedsliceError('FEDSLICE_ERR_CHECKPOINT', `checkpoint ${path} is not a valid safetensors file: ${why}`);
  if (buf.length < 8) throw corrupt(`only ${buf.length} bytes`);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > buf.length - 8) throw corrupt(`header of ${headerLen} bytes does not fit in ${buf.length} bytes (truncated?)`);
  let header: Record<string, HeaderEntry | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  } catch {
    throw corrupt('its header is not JSON');
  }
  const dataStart = 8 + headerLen;
  const weights: Weights = [];
  for (const s of specsWithLayers(layers)) {
    const e = header[s.name] as HeaderEntry | undefined;
    if (!e) throw new FedsliceError('FEDSLICE_ERR_CHECKPOINT', `checkpoint ${path} has no tensor ${s.name}`);
    const want = torchShape(s.layerSpec, s.role, s.shape);
    if (e.dtype !== 'F32') throw new FedsliceError('FEDSLICE_ERR_CHECKPOINT', `checkpoint ${path}: ${s.name} is ${e.dtype}, expected F32`);
    if (!Array.isArray(e.shape) || e.shape.join(',') !== want.join(',')) {
      throw new FedsliceError('FEDSLICE_ERR_CHECKPOINT', `checkpoint ${path}: ${s.name} has shape [${e.shape}], expected [${want}] for this model (check model.width and model.numClasses)`);
    }
    const [b, end] = e.data_offsets;
    if (end - b !== sizeOf(want) * 4 || dataStart + end > buf.length) throw corrupt(`${s.name}'s data is cut short (truncated?)`);
    // copy into an aligned buffer: the file offset need not be a multiple of 4
    const data = new Float32Array(sizeOf(want));
    new Uint8Array(data.buffer).set(buf.subarray(dataStart + b, dataStart + end));
    weights.push({ name: s.name, shape: s.shape, data: fromTorch(s.layerSpec, s.role, s.shape, data) });
  }
  return { weights, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}
