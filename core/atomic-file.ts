/**
 * Whole-file writes that readers never see half done: a temp file beside the target, flushed,
 * then renamed over it. A write that fails (a full disk) removes its temp file and leaves the
 * target as it was. Temp files are named `<path>.tmp-<host>-<pid>-<hex>`, so a later process
 * can tell the ones whose writer is gone (killed mid-write) and remove them.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { isAlive } from './pid.ts';

export function tempPathFor(path: string): string {
  return `${path}.tmp-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Writes `data` (or its parts in order, never joined in memory) to `path` atomically. Parts may be
 * produced lazily (a generator): each is written before the next is asked for, so a large file
 * need not be in memory at once.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string | Iterable<Uint8Array>): void {
  const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (const p of parts) for (let off = 0; off < p.length; ) off += writeSync(fd, p, off, p.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** host and pid of a temp file's writer; no host for names older versions wrote (`<pid>` or `<pid>-<hex>`). */
function writerOf(suffix: string): { host?: string; pid: number } | null {
  const now = /^(.+)-(\d+)-[0-9a-f]{8}$/.exec(suffix);
  if (now) return { host: now[1], pid: Number(now[2]) };
  const before = /^(\d+)(?:-[0-9a-f]{8})?$/.exec(suffix);
  return before ? { pid: Number(before[1]) } : null;
}

/**
 * Removes temp files of `path` whose writer was a process of this machine that is gone; returns
 * their names. Temp files of live processes and of other machines are left alone.
 */
export function removeStaleTemps(path: string): string[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return []; // no folder yet: nothing was ever written there
  }
  const removed: string[] = [];
  for (const name of names) {
    const w = writerOf(name.slice(prefix.length));
    if (!w || (w.host !== undefined && w.host !== hostname()) || isAlive(w.pid)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
