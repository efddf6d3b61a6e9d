/** Records of the results store: results/runs.jsonl and results/rounds.jsonl. */
import type { Experiment } from '../config.ts';
import type { RunKey } from './schema.ts';
import type { RunSummary } from './summary.ts';
import type { StepReport, TrainerRoundStats } from '../training/metrics-schema.ts';

export type RunStatus = 'started' | 'completed' | 'failed' | 'interrupted';

export interface RunEnvironment {
  backend: string;
  node: string;
  tfjs: string;
  fedslice: string;
  host: string;
  platform: string;
  /** The aggregator's compute threads (null: the backend picks them); missing in older records. */
  threads?: number | null;
}

/** One line of runs.jsonl: written when a run starts and again when it ends. */
export interface RunRecord {
  kind: 'run';
  runId: string;
  /** Canonical string of the RunKey plus the config hash, used to find completed work. */
  key: string;
  keyFields: RunKey;
  status: RunStatus;
  config: Experiment;
  startedAt: string; // ISO time
  /**
   * The last evaluation index (round) the run records, fixed when it starts: `rounds` in sync modes,
   * one per `evalEvery` updates in async mode. Missing in records written before it existed.
   */
  plannedRounds?: number;
  endedAt?: string;
  wallSeconds?: number;
  environment: RunEnvironment;
  error?: string;
  /** The last lines of the run's logs, when the sweep runner recorded a failure. */
  logTail?: string[];
  /** Figures written at the end: the run's totals, task times, async counts. */
  summary?: RunSummary;
}

export interface RoundTimings {
  /**
   * Wall clock the round added to the run: from its start (its tasks going out) to its checkpoint,
   * less any wait for the previous round's record, plus the part of its evaluation that did not
   * overlap the next round's training. Summed over a run's records it is the loop's wall clock; no
   * second is counted twice.
   */
  roundSeconds: number;
  /** Slowest trainer's local training time. */
  trainSeconds: number;
  /**
   * Mean over the round's updates of the time a task spent outside training: from the task leaving
   * the aggregator to its update arriving, minus the trainer's reported training time (at least 0).
   * The same in every mode; 0 when no update was applied.
   */
  transferSeconds: number;
  mergeSeconds: number;
  /** The whole evaluation of the round's model, overlapped or not. */
  evalSeconds: number;
  /**
   * Of evalSeconds, the part that ran while the next round's trainers trained (sync mode evaluates
   * round r during round r+1); roundSeconds leaves it out. 0 when nothing overlapped (async mode,
   * the last round). Missing in records written before overlap existed.
   */
  evalOverlapSeconds?: number;
}

/**
 * One line of rounds.jsonl: one evaluation of the global model. `round` is the evaluation index in
 * every mode (0 = the model before training; async mode evaluates every `evalEvery` updates).
 */
export interface RoundRecord extends RunKey, RoundTimings {
  kind: 'round';
  runId: string;
  round: number;
  testLoss: number;
  testAccuracy: number;
  /** Mean training loss over trainers (sample-weighted); null for round 0. */
  trainLoss: number | null;
  bytesSent: number;
  bytesReceived: number;
  /**
   * Training samples in the updates this round applied, per second of roundSeconds: the run's
   * throughput in wall-clock time, the same in every mode; 0 for round 0.
   */
  samplesPerSecond: number;
  trainersReporting: number;
  time: string; // ISO time the record was written
  /** Since the run started (resumed runs continue the count): for curves against wall-clock time. */
  elapsedSeconds?: number;
  /** Training samples in all updates applied so far: for curves against samples seen. */
  samplesSeen?: number;
  /** Updates applied so far (sync: the sum of trainersReporting). */
  updatesApplied?: number;
  /** async mode: the model version evaluated, and the staleness of this window's updates. */
  version?: number;
  staleness?: number;
  maxStaleness?: number;
  /** async mode: mean mixing x staleness weight of this window's updates. */
  meanWeight?: number;
  /** Per trainer whose update this round applied: its step latency and memory figures. */
  trainers?: TrainerRoundFigures[];
  /** The aggregator process's peak resident set size so far (the kernel's high-water mark). */
  aggregatorPeakRssBytes?: number;
}

/** One trainer's figures in a round record: its slot, then what its training call measured. */
export interface TrainerRoundFigures extends TrainerRoundStats {
  slot: number;
}

/**
 * One line of results/steps.jsonl: a trainer's step-log point as the aggregator received it. Lines
 * carry the run id, not the key fields (the run's record has them): millions of lines stay small.
 */
export interface StepRecord extends Omit<StepReport, 'time' | 'step'> {
  kind: 'step';
  runId: string;
  slot: number;
  /** The round (sync) or the slot's task number (async) the point was trained in. */
  round: number;
  /** Steps the slot has taken in the run: (round - 1) x steps per round + steps in this round. */
  globalStep: number;
  /** The trainer's wall clock at the end of the interval (ISO). */
  time: string;
  /** Since the run started, on the aggregator's clock when the point arrived (as in round records). */
  elapsedSeconds: number;
}
