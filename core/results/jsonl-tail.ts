/**
 * Follows a JSON Lines file of the store while writers append to it: each read returns the records
 * of the whole lines appended since the last read, reading only the new bytes. Same rule as
 * readJsonLines: a line that does not parse is skipped and reported. An unterminated last line is
 * held back until its newline arrives (a writer may be finishing it; a writer that died leaves it,
 * and the next append starts on a new line, so the torn text then counts as one unparsable line).
 * A file that shrank (replaced or truncated) is read again from its start.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { TornLine } from './jsonl.ts';
import { asStorageError } from './storage-error.ts';

export interface TailRead<T> {
  /** Records of the lines appended since the last read (all of them after a restart). */
  records: T[];
  /** The file was read again from its start: forget what earlier reads returned. */
  restarted: boolean;
}

const CHUNK = 4 * 1024 * 1024;

export class JsonLinesTail<T> {
  private offset = 0;
  private carry = Buffer.alloc(0);
  private lineNo = 0;
  /** Unparsable lines seen so far (whole lines only). */
  torn: TornLine[] = [];

  constructor(readonly path: string) {}

  /** Bytes of an unterminated last line held back: a writer stopped mid-append, or is appending. */
  get pendingBytes(): number {
    return this.carry.length;
  }

  read(): TailRead<T> {
    const out: TailRead<T> = { records: [], restarted: false };
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (e) {
      if (e instanceof Error && 'code' in e && e.code === 'ENOENT') {
        if (this.offset > 0) this.restart(out);
        return out;
      }
      throw asStorageError(e, this.path, 'read');
    }
    try {
      const size = fstatSync(fd).size;
      if (size < this.offset) this.restart(out);
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, size - this.offset)));
      while (this.offset < size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - this.offset), this.offset);
        if (n === 0) break;
        this.offset += n;
        this.take(this.carry.length ? Buffer.concat([this.carry, buf.subarray(0, n)]) : buf.subarray(0, n), out.records);
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }

  private restart(out: TailRead<T>): void {
    this.offset = 0;
    this.carry = Buffer.alloc(0);
    this.lineNo = 0;
    this.torn = [];
    out.records.length = 0;
    out.restarted = true;
  }

  /** Parses the whole lines of data; keeps what follows the last newline for the next read. */
  private take(data: Buffer, into: T[]): void {
    const lastNewline = data.lastIndexOf(0x0a);
    if (lastNewline < 0) {
      this.carry = Buffer.from(data);
      return;
    }
    // cut after a newline only, so no multi-byte character is split
    for (const line of data.toString('utf8', 0, lastNewline).split('\n')) {
      this.lineNo++;
      if (line.trim() === '') continue;
      try {
        into.push(JSON.parse(line) as T);
      } catch {
        this.torn.push({ line: this.lineNo, text: line, last: false });
      }
    }
    this.carry = Buffer.from(data.subarray(lastNewline + 1));
  }
}
