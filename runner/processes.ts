/**
 * Child processes of a sweep: each role in its own process group (so a role's own children go
 * with it), output to its log file, and every group ended (TERM, then KILL after a grace
 * period) before the sweep exits, whatever way it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { packagePath } from '../core/package-root.ts';
import { withStorageErrors } from '../core/results/storage-error.ts';
import { GO_LINE, HOLD_ENV } from '../core/warm-start.ts';

export const FEDSLICE_BIN = packagePath('bin', 'fedslice.js');

/**
 * Unless the environment sets its own: glibc's malloc may back large buffers (every model frame a
 * role receives) with transparent huge pages, one page fault per 2 MB instead of per 4 KB; the
 * loopback round trip of a model took 0.37-0.53x the time with it (bench/transfer.ts). Ignored
 * where the C library is not glibc.
 */
const HUGE_PAGE_MALLOC = 'glibc.malloc.hugetlb=1';

export interface RoleProcess {
  name: string;
  logFile: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  /** Starts a role spawned held (core/warm-start.ts); false if it is gone (or was not held). */
  go(): boolean;
}

const live = new Set<RoleProcess>();

// Whatever way the sweep process ends (a second Ctrl-C, an internal error, process.exit), no
// group it started outlives it: 'exit' handlers run synchronously, and so does process.kill.
let exitHookInstalled = false;
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) {
      try {
        process.kill(-p.child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/**
 * Spawns `fedslice ...args`. `held`: the role prepares (modules, config, backend) and waits for
 * `go()` on its stdin, or exits when the sweep closes it (core/warm-start.ts).
 */
export function spawnRole(name: string, args: string[], env: Record<string, string>, logFile: string, o: { held?: boolean } = {}): RoleProcess {
  killAllOnExit();
  const fd = withStorageErrors(logFile, () => openSync(logFile, 'a'));
  try {
    writeSync(fd, `# ${new Date().toISOString()} fedslice ${args.join(' ')}\n`);
  } catch {
    /* the header is a courtesy; on a full disk the role starts without it (and says why it stops) */
  }
  const child = spawn(process.execPath, [FEDSLICE_BIN, ...args], {
    env: { GLIBC_TUNABLES: HUGE_PAGE_MALLOC, ...process.env, ...env, FEDSLICE_PARENT_PID: String(process.pid), ...(o.held ? { [HOLD_ENV]: '1' } : {}) },
    detached: true,
    stdio: [o.held ? 'pipe' : 'ignore', fd, fd],
  });
  // a held role that dies never reads its stdin: a write to it must not crash the sweep
  child.stdin?.on('error', () => {});
  closeSync(fd);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      live.delete(proc);
      resolve({ code, signal });
    });
    child.once('error', () => {
      done = true;
      live.delete(proc);
      resolve({ code: null, signal: null });
    });
  });
  const go = (): boolean => {
    if (done || !child.stdin || child.stdin.writableEnded) return false;
    child.stdin.end(`${GO_LINE}\n`);
    return true;
  };
  const proc: RoleProcess = { name, logFile, child, exited, running: () => !done, go };
  live.add(proc);
  return proc;
}

/** Ends a role's whole process group: TERM, then KILL if it is still there after `graceMs`. */
export async function endRole(p: RoleProcess, graceMs = 5000): Promise<void> {
  if (!p.running() || p.child.pid === undefined) return;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-p.child.pid!, sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
  signal('SIGKILL'); // anything the role itself left behind in its group
}

export async function endAll(graceMs = 5000): Promise<void> {
  await Promise.all([...live].map((p) => endRole(p, graceMs)));
}

export function liveCount(): number {
  return live.size;
}

/** The last `n` non-empty lines of a log file. */
export function tail(file: string, n = 12): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).slice(-n);
  } catch {
    return [];
  }
}
