/**
 * The byte layout of a frame, under the schema: a small msgpack header, then every tensor's floats
 * as raw little-endian bytes, 4-byte aligned, so a receiver reads them as Float32Array views over
 * the bytes it received instead of copying them.
 *
 *   [u32 LE header length H][H bytes: msgpack header][0-3 zero bytes][tensor bytes, in order]
 *
 * The header is the message with each Float32Array replaced by a marker { "\0f32": n } (n floats);
 * the tensors follow in the order the markers appear. A frame may arrive as one buffer or as the
 * fragments ws delivered: a tensor that lies inside one fragment at a 4-aligned address becomes a
 * view, any other is copied once (see TensorReads).
 */
import { Packr, Unpackr } from 'msgpackr';

const MARKER = '\0f32';
const PREFIX = 4;

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** How the tensors of decoded frames were read (the bench reports it; tests assert on it). */
export const tensorReads = { views: 0, copies: 0 };

/** Why a frame cannot be read; decode turns it into a FEDSLICE_ERR_FRAME refusal. */
export class FrameError extends Error {}

/**
 * The frame of `value` as pieces: the header (padded so the tensor bytes start 4-aligned), then
 * one view per tensor over the sender's own data (nothing copied). Send them as fragments of one
 * message, or join them with `joinParts`.
 */
export function frameParts(value: unknown): Uint8Array[] {
  const tensors: Float32Array[] = [];
  const header = packr.pack(withMarkers(value, tensors));
  const dataStart = align4(PREFIX + header.byteLength);
  const head = new Uint8Array(dataStart);
  new DataView(head.buffer).setUint32(0, header.byteLength, true);
  head.set(header, PREFIX);
  return [head, ...tensors.map((t) => new Uint8Array(t.buffer, t.byteOffset, t.byteLength))];
}

/** One allocation, written once. */
export function joinParts(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** The value a frame carries, tensors as Float32Array; throws FrameError (or msgpackr's error). */
export function readFrame(parts: readonly Uint8Array[]): unknown {
  const bytes = new Pieces(parts);
  if (bytes.length < PREFIX) throw new FrameError(`frame of ${bytes.length} bytes is shorter than its ${PREFIX}-byte header length`);
  const prefix = bytes.copy(0, PREFIX);
  const headerLength = new DataView(prefix.buffer, prefix.byteOffset, PREFIX).getUint32(0, true);
  const dataStart = align4(PREFIX + headerLength);
  if (dataStart > bytes.length) throw new FrameError(`truncated frame: a ${headerLength}-byte header announced, ${bytes.length - PREFIX} bytes follow`);
  const header: unknown = unpackr.unpack(bytes.copy(PREFIX, headerLength));
  const reader = { at: dataStart };
  const value = withTensors(header, bytes, reader);
  if (reader.at !== bytes.length) {
    throw new FrameError(`frame has ${bytes.length - reader.at} bytes after its tensors (its header announces ${reader.at - dataStart} tensor bytes)`);
  }
  return value;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function withMarkers(v: unknown, tensors: Float32Array[]): unknown {
  if (v instanceof Float32Array) {
    tensors.push(v);
    return { [MARKER]: v.length };
  }
  if (Array.isArray(v)) return v.map((x) => withMarkers(x, tensors));
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = withMarkers(x, tensors);
    return out;
  }
  return v;
}

function withTensors(v: unknown, bytes: Pieces, reader: { at: number }): unknown {
  if (Array.isArray(v)) return v.map((x) => withTensors(x, bytes, reader));
  if (!isPlainObject(v)) return v;
  if (Object.hasOwn(v, MARKER)) {
    const n = v[MARKER];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new FrameError(`a tensor marker holds ${String(n).slice(0, 40)}, not a count of floats`);
    const end = reader.at + 4 * n;
    if (end > bytes.length) throw new FrameError(`truncated frame: its header announces at least ${end} bytes, the frame has ${bytes.length}`);
    const t = bytes.float32(reader.at, n);
    reader.at = end;
    return t;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = withTensors(x, bytes, reader);
  return out;
}

/** The bytes of a frame as received, possibly in fragments, addressed from the frame's start. */
class Pieces {
  readonly length: number;
  private readonly starts: number[] = [];

  constructor(private readonly parts: readonly Uint8Array[]) {
    let n = 0;
    for (const p of parts) {
      this.starts.push(n);
      n += p.byteLength;
    }
    this.length = n;
  }

  /** `n` floats from `at`: a view when they lie in one piece at an aligned address, else a copy. */
  float32(at: number, n: number): Float32Array {
    const i = this.pieceAt(at);
    const p = this.parts[i];
    const local = at - this.starts[i];
    if (n === 0) return new Float32Array(0);
    if (local + 4 * n <= p.byteLength && (p.byteOffset + local) % 4 === 0) {
      tensorReads.views++;
      return new Float32Array(p.buffer, p.byteOffset + local, n);
    }
    tensorReads.copies++;
    const out = new Float32Array(n);
    this.copyInto(new Uint8Array(out.buffer), at);
    return out;
  }

  /** `n` bytes from `at` as their own buffer. */
  copy(at: number, n: number): Uint8Array {
    const i = this.pieceAt(at);
    const p = this.parts[i];
    const local = at - this.starts[i];
    if (local + n <= p.byteLength) return p.subarray(local, local + n);
    const out = new Uint8Array(n);
    this.copyInto(out, at);
    return out;
  }

  private copyInto(out: Uint8Array, at: number): void {
    let i = this.pieceAt(at);
    let local = at - this.starts[i];
    let done = 0;
    while (done < out.byteLength) {
      const p = this.parts[i];
      const take = Math.min(p.byteLength - local, out.byteLength - done);
      out.set(p.subarray(local, local + take), done);
      done += take;
      i++;
      local = 0;
    }
  }

  /** Index of the piece holding byte `at` (the last piece when `at` is the frame's end). */
  private pieceAt(at: number): number {
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
