/** A human summary of a data folder: records per split, classes, per-class counts, file sizes. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_FILE } from './manifest.ts';
import { layoutOf, loadCifarDir } from './reader.ts';
import { COARSE_NAMES_FILE, FINE_NAMES_FILE, TEST_FILE, TRAIN_FILE } from './records.ts';
import type { ImageSet } from './types.ts';

function countsPerClass(set: ImageSet, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const l of set.labels) counts[l]++;
  return counts;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  // first column left-aligned (names), the rest right-aligned (numbers)
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** The lines `fedslice data info` prints for `dir` (throws the reader's error for a bad folder). */
export function describeDataDir(dir: string): string[] {
  const layout = layoutOf(dir);
  const sets = loadCifarDir(dir, layout);
  const n = sets.classNames.length;
  const train = countsPerClass(sets.train, n);
  const test = countsPerClass(sets.test, n);
  const lines = [
    `data folder: ${dir} (${layout.kind === 'cifar100' ? 'CIFAR-100' : 'synthetic'})`,
    `records: ${sets.train.count} train, ${sets.test.count} test`,
    `classes: ${n}${sets.coarseNames ? ` (${sets.coarseNames.length} coarse)` : ''}`,
    '',
    ...table(
      ['class', 'train', 'test'],
      sets.classNames.map((name, c) => [`${c} ${name}`, String(train[c]), String(test[c])]),
    ),
    '',
    ...table(
      ['file', 'bytes'],
      [TRAIN_FILE, TEST_FILE, FINE_NAMES_FILE, COARSE_NAMES_FILE, MANIFEST_FILE]
        .filter((f) => existsSync(join(dir, f)))
        .map((f) => [f, statSync(join(dir, f)).size.toLocaleString('en-US')]),
    ),
  ];
  return lines;
}
