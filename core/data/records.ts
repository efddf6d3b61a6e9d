/** The CIFAR-100 binary record layout: coarse label, fine label, 1,024 R, 1,024 G, 1,024 B bytes. */
import { closeSync, openSync, readSync } from 'node:fs';
import { FedsliceError } from '../errors.ts';
import { IMAGE_BYTES, type ImageSet, type LabelSet } from './types.ts';

export const RECORD_BYTES = 2 + IMAGE_BYTES;
export const CIFAR100_TRAIN_RECORDS = 50_000;
export const CIFAR100_TEST_RECORDS = 10_000;
export const CIFAR100_FINE_CLASSES = 100;
export const CIFAR100_COARSE_CLASSES = 20;

export const TRAIN_FILE = 'train.bin';
export const TEST_FILE = 'test.bin';
export const FINE_NAMES_FILE = 'fine_label_names.txt';
export const COARSE_NAMES_FILE = 'coarse_label_names.txt';

/** The records of `set` in the official layout (coarse label 0 where the set has none). */
export function encodeRecords(set: ImageSet): Uint8Array {
  const out = new Uint8Array(set.count * RECORD_BYTES);
  for (let i = 0; i < set.count; i++) {
    const r = i * RECORD_BYTES;
    out[r] = set.coarseLabels ? set.coarseLabels[i] : 0;
    out[r + 1] = set.labels[i];
    out.set(set.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), r + 2);
  }
  return out;
}

/**
 * A split's labels, read from its file, and where the file is: a role copies out only the images it
 * keeps (imagesAt), streaming the file through one small buffer. Reading a whole 30 MB split into
 * fresh memory cost 8-14x the CPU of the streamed pass on this VM (its pages fault in one by one),
 * and every role of a run did it at start (bench/sweep-overhead.ts).
 */
export interface RecordSet extends LabelSet {
  path: string;
  coarseLabels: Uint8Array;
}

/** Records per read: about 1 MB. */
const CHUNK_RECORDS = 341;

/**
 * Reads `path` from record `first` on, a chunk at a time into one reused buffer; `visit` gets each
 * chunk (whole records only) with its first record's index and returns the next record to read
 * from (skipping what it does not need), or null to stop. A file shorter than what is asked of it
 * is an error, never records of zeros.
 */
function streamRecords(path: string, visit: (chunk: Buffer, first: number, records: number) => number | null, first = 0): void {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_RECORDS * RECORD_BYTES);
    for (let next: number | null = first; next !== null; ) {
      const got = readSync(fd, buffer, 0, buffer.length, next * RECORD_BYTES);
      const records = Math.floor(got / RECORD_BYTES);
      if (records === 0) throw new FedsliceError('FEDSLICE_ERR_DATA_SIZE', `${path} ends before record ${next}: the file changed while it was read; rerun once it is complete`);
      next = visit(buffer, next, records);
    }
  } finally {
    closeSync(fd);
  }
}

/** The fine and coarse labels of the first `count` records of `path` (no range checks). */
export function readLabels(path: string, count: number, numClasses: number): RecordSet {
  const labels = new Uint8Array(count);
  const coarseLabels = new Uint8Array(count);
  if (count > 0) {
    streamRecords(path, (chunk, first, records) => {
      const n = Math.min(records, count - first);
      for (let i = 0; i < n; i++) {
        coarseLabels[first + i] = chunk[i * RECORD_BYTES];
        labels[first + i] = chunk[i * RECORD_BYTES + 1];
      }
      return first + n < count ? first + n : null;
    });
  }
  return { count, labels, numClasses, coarseLabels, path };
}

/** The records at `indices` (in that order, repeats allowed; default every record) as an image set, read from the split's file. */
export function imagesAt(records: RecordSet, indices?: Int32Array): ImageSet {
  const count = indices ? indices.length : records.count;
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  const coarseLabels = new Uint8Array(count);
  const recordOf = (slot: number) => (indices ? indices[slot] : slot);
  for (let slot = 0; slot < count; slot++) {
    const j = recordOf(slot);
    if (!(j >= 0 && j < records.count)) throw new RangeError(`record ${j} is outside the split's ${records.count} records`);
    labels[slot] = records.labels[j];
    coarseLabels[slot] = records.coarseLabels[j];
  }
  // the slots in file order, so one pass over the file fills them all
  const order = indices ? Int32Array.from(indices.keys()).sort((a, b) => indices[a] - indices[b]) : undefined;
  const slotAt = (p: number) => (order ? order[p] : p);
  let p = 0;
  if (count > 0) {
    streamRecords(
      records.path,
      (chunk, first, n) => {
        // Buffer.copy moves each image without making a view per record (10x faster than subarray + set)
        for (; p < count && recordOf(slotAt(p)) < first + n; p++) {
          const r = (recordOf(slotAt(p)) - first) * RECORD_BYTES;
          chunk.copy(images, slotAt(p) * IMAGE_BYTES, r + 2, r + RECORD_BYTES);
        }
        return p < count ? recordOf(slotAt(p)) : null;
      },
      recordOf(slotAt(0)),
    );
  }
  return { count, images, labels, numClasses: records.numClasses, coarseLabels };
}

/** Label names, one per line, trailing blank lines ignored. */
export function parseNames(text: string): string[] {
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  return lines.map((l) => l.trim());
}
