/**
 * The append-only results store: runs.jsonl and rounds.jsonl in one directory. Appends are whole
 * lines or nothing, even on a full disk, and concurrent writers (several aggregators of a sweep,
 * two sweeps) never interleave inside a line; readers skip and report torn lines (./jsonl.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Experiment } from '../config.ts';
import type { RoundRecord, RunKey, RunRecord } from './types.ts';
import { appendJsonLine, readJsonLines, type JsonLines } from './jsonl.ts';
import { withStorageErrors } from './storage-error.ts';

export const RUNS_FILE = 'runs.jsonl';
export const ROUNDS_FILE = 'rounds.jsonl';

export function runKeyFields(c: Experiment): RunKey {
  return {
    worldSize: c.federation.worldSize,
    learningRate: c.train.learningRate,
    swap: c.federation.swap,
    layerwiseSwap: c.federation.layerwiseSwap,
    rounds: c.federation.rounds,
    seed: c.seed,
    mode: c.federation.mode,
    dataset: c.dataset.name,
    width: c.model.width,
  };
}

/** Hash of everything that changes what a run computes (not its name, backend or timeouts). */
export function configHash(c: Experiment): string {
  const { name: _n, backend: _b, log: _l, ...rest } = c;
  const { roundTimeoutS: _t, minTrainers: _m, ...federation } = c.federation;
  const { batchSize: _e, ...evalRest } = c.eval;
  const canonical = JSON.stringify(sortKeys({ ...rest, federation, eval: evalRest }));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 8);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/**
 * A readable, file-name-safe name for key fields, like the reference's log folders:
 * ws2_lr0.0001_swap1_lsw0_r10_seed42_slice_cifar100_w1. Without a seed it names a configuration.
 */
export function keyName(k: Omit<RunKey, 'seed'> & { seed?: number }): string {
  const b = (x: boolean) => (x ? 1 : 0);
  return [
    `ws${k.worldSize}`,
    `lr${k.learningRate}`,
    `swap${b(k.swap)}`,
    `lsw${b(k.layerwiseSwap)}`,
    `r${k.rounds}`,
    ...(k.seed === undefined ? [] : [`seed${k.seed}`]),
    k.mode,
    k.dataset,
    `w${k.width}`,
  ].join('_');
}

/** The run's key: its key fields plus the hash of everything else that changes what it computes. */
export function runKey(c: Experiment): string {
  return `${keyName(runKeyFields(c))}_${configHash(c)}`;
}

export class ResultsStore {
  readonly runsPath: string;
  readonly roundsPath: string;

  constructor(readonly dir: string) {
    this.runsPath = join(dir, RUNS_FILE);
    this.roundsPath = join(dir, ROUNDS_FILE);
  }

  ensureDir(): void {
    withStorageErrors(this.dir, () => mkdirSync(this.dir, { recursive: true }), 'write', this.dir);
  }

  appendRun(r: RunRecord): void {
    this.ensureDir();
    appendJsonLine(this.runsPath, r);
  }

  appendRound(r: RoundRecord): void {
    this.ensureDir();
    appendJsonLine(this.roundsPath, r);
  }

  readRuns(): JsonLines<RunRecord> {
    return readJsonLines<RunRecord>(this.runsPath);
  }

  readRounds(): JsonLines<RoundRecord> {
    return readJsonLines<RoundRecord>(this.roundsPath);
  }

  /** The latest record of each run id (a run writes 'started' then its end state). */
  latestRuns(): Map<string, RunRecord> {
    const latest = new Map<string, RunRecord>();
    for (const r of this.readRuns().records) latest.set(r.runId, r);
    return latest;
  }

  /** Keys with at least one completed run. */
  completedKeys(): Set<string> {
    const done = new Set<string>();
    for (const r of this.latestRuns().values()) if (r.status === 'completed') done.add(r.key);
    return done;
  }

  /** Round records of one run, de-duplicated by round (the last write wins), in round order. */
  roundsOf(runId: string): RoundRecord[] {
    const byRound = new Map<number, RoundRecord>();
    for (const r of this.readRounds().records) if (r.runId === runId) byRound.set(r.round, r);
    return [...byRound.values()].sort((a, b) => a.round - b.round);
  }
}
