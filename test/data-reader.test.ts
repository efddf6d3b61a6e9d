import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isFedsliceError } from '../core/errors.ts';
import { CIFAR100_LAYOUT, layoutOf, loadCifarDir, readSplit, readSplitRecords, type SetLayout } from '../core/data/reader.ts';
import { imagesAt } from '../core/data/records.ts';
import { writeSynthetic } from '../core/data/synthetic.ts';

const root = mkdtempSync(join(tmpdir(), 'fedslice-reader-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Records written by hand in the official layout: coarse, fine, R plane, G plane, B plane. */
function officialRecords(n: number, fine: (i: number) => number, coarse: (i: number) => number): Buffer {
  const b = Buffer.alloc(n * 3074);
  for (let i = 0; i < n; i++) {
    const r = i * 3074;
    b[r] = coarse(i);
    b[r + 1] = fine(i);
    for (let p = 0; p < 1024; p++) {
      b[r + 2 + p] = (i * 7 + p) & 0xff; // red
      b[r + 2 + 1024 + p] = 10 + i; // green
      b[r + 2 + 2048 + p] = 250 - i; // blue
    }
  }
  return b;
}

function officialDir(name: string, trainN: number, testN: number): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.bin'), officialRecords(trainN, (i) => (i * 13) % 100, (i) => i % 20));
  writeFileSync(join(dir, 'test.bin'), officialRecords(testN, (i) => 99 - i, (i) => 19 - (i % 20)));
  writeFileSync(join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `fine${i}`).join('\n') + '\n');
  writeFileSync(join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n') + '\n');
  return dir;
}

const small: SetLayout = { ...CIFAR100_LAYOUT, trainRecords: 6, testRecords: 3 };

function errorOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isFedsliceError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a FedsliceError');
}

describe('CIFAR-100 binary reader', () => {
  it('reads images, fine and coarse labels back exactly, planes in R, G, B order', () => {
    const dir = officialDir('ok', 6, 3);
    const sets = loadCifarDir(dir, small);
    expect(sets.train.count).toBe(6);
    expect(sets.test.count).toBe(3);
    expect(sets.train.numClasses).toBe(100);
    expect(Array.from(sets.train.labels)).toEqual([0, 13, 26, 39, 52, 65]);
    expect(Array.from(sets.train.coarseLabels!)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(sets.test.labels)).toEqual([99, 98, 97]);
    expect(Array.from(sets.test.coarseLabels!)).toEqual([19, 18, 17]);
    expect(sets.classNames).toHaveLength(100);
    expect(sets.classNames[42]).toBe('fine42');
    expect(sets.coarseNames![19]).toBe('coarse19');
    const img = (i: number) => sets.train.images.subarray(i * 3072, (i + 1) * 3072);
    for (const i of [0, 5]) {
      expect(img(i)[0]).toBe((i * 7) & 0xff);
      expect(img(i)[1023]).toBe((i * 7 + 1023) & 0xff);
      expect(img(i)[1024]).toBe(10 + i);
      expect(img(i)[3071]).toBe(250 - i);
    }
  });

  it('a folder without a synthetic manifest must have the official sizes', () => {
    const dir = officialDir('small', 6, 3);
    expect(layoutOf(dir)).toEqual(CIFAR100_LAYOUT);
    const e = errorOf(() => loadCifarDir(dir));
    expect(e.code).toBe('FEDSLICE_ERR_DATA_SIZE');
    expect(e.message).toContain(join(dir, 'train.bin'));
    expect(e.message).toContain('18,444 bytes');
    expect(e.message).toContain('153,700,000');
    expect(e.message).toContain('50,000 records');
  });

  it('names the missing, truncated or wrong-sized file with its size and the expected size', () => {
    const dir = officialDir('bad', 6, 3);
    truncateSync(join(dir, 'test.bin'), 3 * 3074 - 1);
    let e = errorOf(() => loadCifarDir(dir, small));
    expect(e.code).toBe('FEDSLICE_ERR_DATA_SIZE');
    expect(e.message).toMatch(/test\.bin is 9,221 bytes but must be 9,222 .*truncated/);
    writeFileSync(join(dir, 'test.bin'), Buffer.alloc(4 * 3074));
    e = errorOf(() => loadCifarDir(dir, small));
    expect(e.message).toMatch(/test\.bin is 12,296 bytes but must be 9,222 .*too large/);
    rmSync(join(dir, 'train.bin'));
    e = errorOf(() => loadCifarDir(dir, small));
    expect(e.code).toBe('FEDSLICE_ERR_DATA_MISSING');
    expect(e.message).toContain(`${join(dir, 'train.bin')} is missing; run \`fedslice data download`);
    expect(errorOf(() => loadCifarDir(join(root, 'nowhere'))).code).toBe('FEDSLICE_ERR_DATA_MISSING');
  });

  it('rejects labels out of range and a wrong number of class names', () => {
    const dir = officialDir('labels', 6, 3);
    writeFileSync(join(dir, 'train.bin'), officialRecords(6, (i) => (i === 4 ? 100 : 1), () => 0));
    let e = errorOf(() => loadCifarDir(dir, small));
    expect(e.code).toBe('FEDSLICE_ERR_DATA_LABEL');
    expect(e.message).toContain('record 4 has fine label 100, outside [0, 100)');
    writeFileSync(join(dir, 'train.bin'), officialRecords(6, () => 1, (i) => (i === 2 ? 20 : 0)));
    e = errorOf(() => loadCifarDir(dir, small));
    expect(e.message).toContain('record 2 has coarse label 20, outside [0, 20)');
    writeFileSync(join(dir, 'train.bin'), officialRecords(6, () => 1, () => 0));
    writeFileSync(join(dir, 'fine_label_names.txt'), 'a\nb\n');
    e = errorOf(() => loadCifarDir(dir, small));
    expect(e.code).toBe('FEDSLICE_ERR_DATA_NAMES');
    expect(e.message).toContain('has 2 names but must have 100');
  });

  it('reads a synthetic set by its manifest, and readSplit checks a given record count', () => {
    const dir = join(root, 'syn');
    const written = writeSynthetic(dir, { numClasses: 4, trainCount: 30, testCount: 8, seed: 5 });
    const sets = loadCifarDir(dir);
    expect(layoutOf(dir).kind).toBe('synthetic');
    expect(sets.train.images).toEqual(written.train.images);
    expect(sets.train.labels).toEqual(written.train.labels);
    expect(sets.train.coarseLabels).toEqual(written.train.coarseLabels);
    expect(sets.test.labels).toEqual(written.test.labels);
    expect(sets.classNames).toEqual(['class_0', 'class_1', 'class_2', 'class_3']);
    const e = errorOf(() => readSplit(join(dir, 'train.bin'), 31, layoutOf(dir), dir));
    expect(e.message).toMatch(/train\.bin is 92,220 bytes but must be 95,294 /);
  });

  it('copies out the images at any indices, in their order and with repeats, from a file read in chunks', () => {
    // 1,000 records: the file is read a chunk (341 records) at a time
    const n = 1000;
    const dir = officialDir('many', n, 3);
    const path = join(dir, 'train.bin');
    const bytes = officialRecords(n, (i) => (i * 13) % 100, (i) => i % 20);
    const records = readSplitRecords(path, n, { ...CIFAR100_LAYOUT, trainRecords: n }, dir);
    const indices = Int32Array.from([999, 0, 340, 341, 682, 500, 0, 998, 341]);
    const set = imagesAt(records, indices);
    indices.forEach((j, i) => {
      expect(Buffer.from(set.images.subarray(i * 3072, (i + 1) * 3072)).equals(bytes.subarray(j * 3074 + 2, (j + 1) * 3074))).toBe(true);
      expect(set.labels[i]).toBe((j * 13) % 100);
      expect(set.coarseLabels![i]).toBe(j % 20);
    });
    const all = imagesAt(records);
    expect(all.count).toBe(n);
    expect(Buffer.from(all.images.subarray(999 * 3072)).equals(bytes.subarray(999 * 3074 + 2))).toBe(true);
    expect(() => imagesAt(records, Int32Array.from([n]))).toThrow(/record 1000 is outside the split's 1000 records/);
    // the file shrinks after its labels were read: an error naming it, not images of zeros
    truncateSync(path, 700 * 3074);
    const e = errorOf(() => imagesAt(records, Int32Array.from([10, 900])));
    expect(e.code).toBe('FEDSLICE_ERR_DATA_SIZE');
    expect(e.message).toContain(`${path} ends before record 900: the file changed while it was read`);
  });
});
