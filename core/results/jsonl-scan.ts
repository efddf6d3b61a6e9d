/**
 * Reads a JSON Lines file of any size record by record, in chunks, without holding the file or its
 * records in memory (steps.jsonl grows to millions of lines). Same rule as readJsonLines: a line
 * that does not parse is skipped and reported, and an unterminated last line is a torn append.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { TornLine } from './jsonl.ts';
import { asStorageError } from './storage-error.ts';

export interface ScanResult {
  /** Records handed to the visitor. */
  records: number;
  /** Lines that did not parse, anywhere in the file; they are skipped. */
  torn: TornLine[];
}

const CHUNK = 8 * 1024 * 1024;

/** Calls visit(record) for every line that parses; a missing file has no records. */
export function scanJsonLines(path: string, visit: (record: unknown) => void): ScanResult {
  const out: ScanResult = { records: 0, torn: [] };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if (e instanceof Error && 'code' in e && e.code === 'ENOENT') return out;
    throw asStorageError(e, path, 'read');
  }
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let carry = Buffer.alloc(0);
    let lineNo = 0;
    const parse = (line: string, last: boolean) => {
      lineNo++;
      if (line.trim() === '') return;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        out.torn.push({ line: lineNo, text: line, last });
        return;
      }
      out.records++;
      visit(record);
    };
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      const data = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      const lastNewline = data.lastIndexOf(0x0a);
      if (lastNewline < 0) {
        carry = Buffer.from(data);
        continue;
      }
      // whole lines only: a chunk is cut after its last newline, so no character is split
      const lines = data.toString('utf8', 0, lastNewline).split('\n');
      for (const line of lines) parse(line, false);
      carry = Buffer.from(data.subarray(lastNewline + 1));
    }
    if (carry.length > 0) parse(carry.toString('utf8'), true);
  } finally {
    closeSync(fd);
  }
  return out;
}
