/** Real fedslice processes for end-to-end tests: spawn, watch output, wait, and always clean up. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(REPO, 'bin', 'fedslice.js');

export interface Role {
  name: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first output line matching `re` (event-driven: no polling). */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>;
}

const live = new Set<ChildProcess>();

/**
 * Roles a test starts by hand share the machine with each other, so each computes on one thread
 * (a role alone would take every core); a sweep's roles get the runner's budget instead.
 */
const SHARED_MACHINE: Record<string, string> = { FEDSLICE_WASM_THREADS: '1' };

/** `wrap`: a command the role runs under, e.g. ['ip', 'netns', 'exec', ns] (it must exec node in place). */
export function startRole(name: string, args: string[], env: Record<string, string> = {}, wrap: string[] = []): Role {
  const argv = [...wrap, process.execPath, BIN, ...args];
  const byHand = args[0] === 'aggregator' || args[0] === 'trainer';
  const child = spawn(argv[0], argv.slice(1), {
    cwd: REPO,
    env: { ...(byHand ? SHARED_MACHINE : {}), ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let text = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of [...waiters]) {
      const m = text.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    name,
    child,
    output: () => text,
    exited,
    waitFor: (re, timeoutMs = 120_000) =>
      new Promise((resolve, reject) => {
        const m = text.match(re);
        if (m) return resolve(m);
        const timer = setTimeout(() => reject(new Error(`${name}: no output matching ${re} within ${timeoutMs} ms; output:\n${text}`)), timeoutMs);
        const w = {
          re,
          resolve: (x: RegExpMatchArray) => {
            clearTimeout(timer);
            resolve(x);
          },
        };
        waiters.push(w);
        exited.then(() => {
          if (waiters.includes(w)) {
            waiters.splice(waiters.indexOf(w), 1);
            clearTimeout(timer);
            reject(new Error(`${name} exited before printing ${re}; output:\n${text}`));
          }
        });
      }),
  };
}

/** Ends every role still running (whole process groups). Call from afterEach. */
export async function stopAll(): Promise<void> {
  const waits = [...live].map(
    (c) =>
      new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          resolve();
        }
      }),
  );
  await Promise.all(waits);
}

export function tempDir(prefix = 'fedslice-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeJson(path: string, value: unknown): string {
  writeFileSync(path, JSON.stringify(value, null, 2));
  return path;
}

/** The records of a JSON Lines file of the results store. */
export function jsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}
