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

/**
 * True when `key`'s lock was left by a process of this host that is gone: the sweep that ran it
 * died without recording how the run ended (SIGKILL, a crash of the machine's session).
 */
export function lockAbandoned(results: string, key: string): boolean {
  const owner = lockOwner(join(results, 'locks', `${key}.lock`));
  return owner !== null && ownerGone(owner);
}

function ownerGone(owner: { pid?: number; host?: string }): boolean {
  return owner.host === hostname() && owner.pid !== undefined && !isAlive(owner.pid);
}

/** The owner a lock file names; null when there is no lock or it is half-written. */
function lockOwner(path: string): { pid?: number; host?: string } | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
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
      const owner = lockOwner(path);
      if (owner === null) return null; // half-written: treat as held, the writer is alive
      if (ownerGone(owner)) {
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
