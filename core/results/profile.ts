/**
 * results/logs/<run key>/profile.json: one file that describes a run without the rest of the
 * store: its full config, environment, status and times, a timing summary of its rounds, the
 * latency and memory of its trainers and aggregator, and the data it trained on. Written whole
 * (temp file, rename) when the run ends.
 */
import { join, resolve } from 'node:path';
import type { Experiment } from '../config.ts';
import type { DataStatistics } from '../data/statistics.ts';
import { writeFileAtomic } from '../atomic-file.ts';
import { type TrainerSummary, summarizeTrainerFigures } from './trainer-summary.ts';
import type { RoundRecord, RoundTimings, RunEnvironment, RunStatus } from './types.ts';
import type { RunKey } from './schema.ts';
import type { RunSummary } from './summary.ts';

export const PROFILE_FILE = 'profile.json';

/** <results>/logs/: a folder per run, and the sweep's metaserver log. */
export function logsDir(results: string): string {
  return resolve(results, 'logs');
}

/** <results>/logs/<key>/: the run's logs, its config as the sweep wrote it, and its profile. */
export function runLogDir(results: string, key: string): string {
  return join(logsDir(results), key);
}

/** Per training round: mean seconds of the round and of each phase (RoundTimings), and samples/s. */
export interface TimingSummary extends RoundTimings {
  /** Training rounds recorded (round >= 1). */
  trainingRounds: number;
  /** Sum over every record, round 0's evaluation included. */
  totalSeconds: number;
  samplesPerSecond: number;
  firstTestAccuracy: number | null;
  finalTestAccuracy: number | null;
  finalTestLoss: number | null;
}

export interface RunProfile {
  kind: 'profile';
  runId: string;
  key: string;
  keyFields: RunKey;
  status: RunStatus;
  startedAt: string;
  endedAt: string;
  wallSeconds: number;
  error?: string;
  config: Experiment;
  environment: RunEnvironment;
  timing: TimingSummary;
  /** Step latency and memory of the trainers and the aggregator; null before any trainer figures. */
  trainers: TrainerSummary | null;
  data: DataStatistics;
  /** The run record's end summary (async figures, per-slot counts). */
  summary?: RunSummary;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** The timing of a run's round records (one per round, in round order). */
export function timingSummary(rounds: readonly RoundRecord[]): TimingSummary {
  const training = rounds.filter((r) => r.round >= 1);
  const last = rounds.at(-1);
  return {
    trainingRounds: training.length,
    totalSeconds: rounds.reduce((a, r) => a + r.roundSeconds, 0),
    roundSeconds: mean(training.map((r) => r.roundSeconds)),
    trainSeconds: mean(training.map((r) => r.trainSeconds)),
    transferSeconds: mean(training.map((r) => r.transferSeconds)),
    mergeSeconds: mean(training.map((r) => r.mergeSeconds)),
    evalSeconds: mean(training.map((r) => r.evalSeconds)),
    evalOverlapSeconds: mean(training.map((r) => r.evalOverlapSeconds ?? 0)),
    samplesPerSecond: mean(training.map((r) => r.samplesPerSecond)),
    firstTestAccuracy: rounds[0]?.testAccuracy ?? null,
    finalTestAccuracy: last?.testAccuracy ?? null,
    finalTestLoss: last?.testLoss ?? null,
  };
}

export interface ProfileInput extends Omit<RunProfile, 'kind' | 'timing' | 'trainers'> {
  rounds: readonly RoundRecord[];
}

export function buildProfile({ rounds, ...rest }: ProfileInput): RunProfile {
  return { kind: 'profile', ...rest, timing: timingSummary(rounds), trainers: summarizeTrainerFigures(rounds.filter((r) => r.round >= 1)) };
}

/** Writes the profile to <results>/logs/<key>/profile.json; returns its path. */
export function writeProfile(results: string, profile: RunProfile): string {
  const path = join(runLogDir(results, profile.key), PROFILE_FILE);
  writeFileAtomic(path, `${JSON.stringify(profile, null, 2)}\n`);
  return path;
}
