/** The CIFAR-100 binary record layout: coarse label, fine label, 1,024 R, 1,024 G, 1,024 B bytes. */
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
 * Whole records with their labels decoded and their images still in `bytes`: a role copies out
 * only the images it keeps (imagesAt), not every record of the file.
 */
export interface RecordSet extends LabelSet {
  bytes: Uint8Array;
  coarseLabels: Uint8Array;
}

/** The fine and coarse labels of whole records (no range checks). */
export function decodeLabels(bytes: Uint8Array, numClasses: number): RecordSet {
  const count = Math.floor(bytes.length / RECORD_BYTES);
  const labels = new Uint8Array(count);
  const coarseLabels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const r = i * RECORD_BYTES;
    coarseLabels[i] = bytes[r];
    labels[i] = bytes[r + 1];
  }
  return { count, labels, numClasses, coarseLabels, bytes };
}

/** The records at `indices` (in that order; default every record) as an image set. */
export function imagesAt(records: RecordSet, indices?: Int32Array): ImageSet {
  const count = indices ? indices.length : records.count;
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  const coarseLabels = new Uint8Array(count);
  // Buffer.copy moves each image without making a view per record (10x faster than subarray + set)
  const src = Buffer.from(records.bytes.buffer, records.bytes.byteOffset, records.bytes.byteLength);
  for (let i = 0; i < count; i++) {
    const j = indices ? indices[i] : i;
    const r = j * RECORD_BYTES;
    src.copy(images, i * IMAGE_BYTES, r + 2, r + RECORD_BYTES);
    labels[i] = records.labels[j];
    coarseLabels[i] = records.coarseLabels[j];
  }
  return { count, images, labels, numClasses: records.numClasses, coarseLabels };
}

/** Label names, one per line, trailing blank lines ignored. */
export function parseNames(text: string): string[] {
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  return lines.map((l) => l.trim());
}
