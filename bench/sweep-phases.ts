/**
 * Where a run's start-up and shut-down go, from the role logs of a sweep run with
 * bench/stamp-stderr.mjs preloaded (each line "@<epoch ms> ..."): one clock per run, the phases
 * as differences of its marks. A mark a log lacks (a resumed run, an older build) leaves its
 * phases out.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Epoch ms of the first line matching `pattern`, or of the last with `last`. */
function mark(lines: string[], pattern: RegExp, last = false): number | null {
  const hits = lines.filter((l) => pattern.test(l));
  const line = last ? hits.at(-1) : hits[0];
  const m = line && /^@(\d+) /.exec(line);
  return m ? Number(m[1]) : null;
}

function logLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** The marks of one run: its aggregator's, and the latest of each trainer mark (the run waits for the last trainer). */
export interface RunClock {
  /** When the run's aggregator was spawned, or, started ahead (a warm spare), when it was told to go. */
  spawned: number | null;
  /** Started ahead: the phases before its go are not the run's; they are left out. */
  warm: boolean;
  nodeStarted: number | null;
  preloaded: number | null;
  planned: number | null;
  backend: number | null;
  listening: number | null;
  trainersReady: number | null;
  firstRound: number | null;
  completed: number | null;
  exited: number | null;
  /** When the sweep spawned the next run's aggregator (null for the last run). */
  nextSpawned: number | null;
}

function latest(xs: (number | null)[]): number | null {
  const known = xs.filter((x): x is number => x !== null);
  return xs.length && known.length === xs.length ? Math.max(...known) : null;
}

function spawnedAt(lines: string[]): number | null {
  const m = /^# (\S+) fedslice /.exec(lines[0] ?? '');
  return m ? Date.parse(m[1]) : null;
}

export function roleClocks(logs: string, keys: string[]): RunClock[] {
  const clocks = keys.map((key): RunClock => {
    const dir = join(logs, key);
    const agg = logLines(join(dir, 'aggregator.log'));
    const trainers = readdirSync(dir).filter((f) => /^trainer-.*\.log$/.test(f)).map((f) => logLines(join(dir, f)));
    const started = /^@(\d+) stamp: node started @(\d+)/.exec(agg.find((l) => l.includes('stamp: node started')) ?? '');
    const go = mark(agg, /fedslice: go$/);
    const cold = go === null;
    return {
      spawned: go ?? spawnedAt(agg),
      warm: !cold,
      nodeStarted: started && cold ? Number(started[2]) : null,
      preloaded: started && cold ? Number(started[1]) : null,
      planned: mark(agg, /aggregator: (nothing to resume|resuming)/),
      backend: cold ? mark(agg, /fedslice: backend /) : null,
      listening: mark(agg, /listening for trainers/),
      trainersReady: latest(trainers.map((t) => mark(t, /waiting for the aggregator/))),
      firstRound: mark(agg, /aggregator: round 1\/\d+: sent/),
      completed: mark(agg, /aggregator: run \S+ completed/),
      exited: mark(agg, /stamp: exit/, true),
      nextSpawned: null,
    };
  });
  // runs go one at a time (--parallel 1): order them by spawn to find each one's successor
  const bySpawn = [...clocks].filter((c) => c.spawned !== null).sort((a, b) => a.spawned! - b.spawned!);
  bySpawn.forEach((c, i) => (c.nextSpawned = bySpawn[i + 1]?.spawned ?? null));
  return clocks;
}

const between = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : (b - a) / 1000);

/** The phases the bench prints, in the order a run goes through them. */
export const PHASES: { name: string; seconds: (c: RunClock) => number | null }[] = [
  { name: 'spawn -> node running (aggregator)', seconds: (c) => between(c.spawned, c.nodeStarted) },
  { name: 'node start-up', seconds: (c) => between(c.nodeStarted, c.preloaded) },
  { name: 'imports, config, run plan', seconds: (c) => between(c.preloaded, c.planned) },
  { name: 'backend', seconds: (c) => between(c.planned, c.backend) },
  { name: 'data, recorder, trainer server', seconds: (c) => between(c.backend, c.listening) },
  { name: 'go -> run plan (roles started ahead)', seconds: (c) => (c.warm ? between(c.spawned, c.planned) : null) },
  { name: 'spawn -> last trainer ready (backend, data)', seconds: (c) => between(c.spawned, c.trainersReady) },
  { name: 'spawn -> round 1 sent (all joined)', seconds: (c) => between(c.spawned, c.firstRound) },
  { name: 'run completed -> aggregator exit', seconds: (c) => between(c.completed, c.exited) },
  { name: 'aggregator exit -> next run spawned', seconds: (c) => between(c.exited, c.nextSpawned) },
];
