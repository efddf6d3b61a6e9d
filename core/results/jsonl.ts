/**
 * JSON Lines files that several processes append to (the aggregators of a sweep, the sweep
 * runner, two sweeps on one results directory) and that survive a full disk:
 * - an append is one line written whole or not at all: a write that fails (ENOSPC mid-line, a
 *   failed fsync) truncates the file back to where the append started;
 * - an append to a file that does not end in a newline (a writer killed mid-line, an older
 *   version) starts with one, so a torn line never swallows the record after it;
 * - appends hold a lock (a symlink: creating one needs no data block, so it works on a full
 *   disk) so that "where the append started" is ours alone and lines never interleave;
 * - readers skip every line that does not parse and say where it was.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, lstatSync, openSync, readFileSync, readSync, readlinkSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAlive } from '../pid.ts';
import { asStorageError, withStorageErrors } from './storage-error.ts';

/** A line that does not parse: cut short by a writer that stopped mid-append, or garbled. */
export interface TornLine {
  /** 1-based line number. */
  line: number;
  text: string;
  /** The file's unterminated last line (a writer may still be finishing it, or died). */
  last: boolean;
}

export interface JsonLines<T> {
  records: T[];
  /** Lines that did not parse, anywhere in the file; they are skipped. */
  torn: TornLine[];
}

export function readJsonLines<T>(path: string): JsonLines<T> {
  const out: JsonLines<T> = { records: [], torn: [] };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errnoIs(e, 'ENOENT')) return out;
    throw asStorageError(e, path, 'read');
  }
  const lines = text.split('\n');
  const endsClean = text.length === 0 || text.endsWith('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.records.push(JSON.parse(line) as T);
    } catch {
      out.torn.push({ line: i + 1, text: line, last: i === lines.length - 1 && !endsClean });
    }
  });
  return out;
}

/**
 * What a reader says about a file's torn lines: the unterminated last one (a writer stopped
 * mid-append), and the others by line number.
 */
export function tornLineWarnings(file: string, torn: readonly TornLine[]): string[] {
  const warnings: string[] = [];
  const inside = torn.filter((t) => !t.last).map((t) => t.line);
  if (torn.some((t) => t.last)) warnings.push(`${file}: skipped a torn last line (a writer stopped mid-append)`);
  if (inside.length > 0) warnings.push(`${file}: skipped ${inside.length} unparsable line(s): ${inside.slice(0, 10).join(', ')}${inside.length > 10 ? ', ...' : ''} (torn by a writer that stopped mid-append, or garbled)`);
  return warnings;
}

/** Appends one JSON record as one line with one write, flushed to disk; all of it or nothing. */
export function appendJsonLine(path: string, record: unknown): void {
  const line = Buffer.from(JSON.stringify(record) + '\n', 'utf8');
  withStorageErrors(path, () => {
    const release = lockFile(path);
    try {
      appendWhole(path, line);
    } finally {
      release();
    }
  });
}

function appendWhole(path: string, line: Buffer): void {
  const fd = openSync(path, 'a+');
  try {
    const start = fstatSync(fd).size;
    const bytes = start > 0 && !endsWithNewline(fd, start) ? Buffer.concat([Buffer.from('\n'), line]) : line;
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } catch (e) {
      ftruncateSync(fd, start); // shrinking needs no space: never leave part of a line behind
      throw e;
    }
  } finally {
    closeSync(fd);
  }
}

function endsWithNewline(fd: number, size: number): boolean {
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  return last[0] === 0x0a;
}

// An append takes microseconds; a lock this old was left by a process that died holding it.
const STALE_LOCK_MS = 30_000;
const waitCell = new Int32Array(new SharedArrayBuffer(4));

/** Takes `<path>.lock` (a symlink naming host and pid), waiting for another holder; returns its release. */
function lockFile(path: string): () => void {
  const lock = `${path}.lock`;
  const me = `${hostname()}:${process.pid}`;
  for (;;) {
    try {
      symlinkSync(me, lock);
      return () => unlinkQuietly(lock);
    } catch (e) {
      if (!errnoIs(e, 'EEXIST')) throw e;
    }
    if (isStale(lock)) {
      unlinkQuietly(lock);
      continue;
    }
    Atomics.wait(waitCell, 0, 0, 2); // a sleep of 2 ms without spinning the CPU
  }
}

function isStale(lock: string): boolean {
  try {
    const [host, pid] = readlinkSync(lock).split(':');
    if (host === hostname() && Number.isInteger(Number(pid)) && !isAlive(Number(pid))) return true;
    return Date.now() - lstatSync(lock).mtimeMs > STALE_LOCK_MS;
  } catch {
    return false; // released meanwhile: try again
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already: another waiter took over a stale lock */
  }
}

function errnoIs(e: unknown, code: string): boolean {
  return e instanceof Error && 'code' in e && e.code === code;
}
