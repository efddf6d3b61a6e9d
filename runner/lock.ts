/**
 * One run at a time per key across every sweep sharing a results directory: a lock file made
 * with O_EXCL holding the owner's pid. A lock whose process is gone is stale and taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { withStorageErrors } from '../core/results/storage-error.ts';
import { isAlive } from '../core/pid.ts';

export interface RunLock {
  release(): void;
}

/** The lock for `key`, or null when a live process on this host holds it. */
export function tryLock(results: string, key: string): RunLock | null {
  const path = join(results, 'locks', `${key}.lock`);
  return withStorageErrors(path, () => takeLock(path));
}

function takeLock(path: string): RunLock | null {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }));
      } catch (e) {
        unlinkSync(path); // an empty lock would look held for ever (a full disk takes the name, not the bytes)
        throw e;
      } finally {
        closeSync(fd);
      }
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          try {
            unlinkSync(path);
          } catch {
            /* gone already */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner: { pid?: number; host?: string } = {};
      try {
        owner = JSON.parse(readFileSync(path, 'utf8'));
      } catch {
        /* half-written: treat as held, the writer is alive */
        return null;
      }
      if (owner.host === hostname() && owner.pid !== undefined && !isAlive(owner.pid)) {
        try {
          unlinkSync(path); // stale: its sweep died without cleaning up
        } catch {
          /* someone else took it over first */
        }
        continue;
      }
      return null;
    }
  }
  return null;
}
