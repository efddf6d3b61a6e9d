/**
 * A round's figures from what a round loop saw: one definition of every timing and rate, shared by
 * the synchronous and the asynchronous loop (RoundRecord documents what each one means).
 */
import type { RunKey } from '../core/results/schema.ts';
import type { RoundRecord, TrainerRoundFigures } from '../core/results/types.ts';
import type { TrainerRoundStats } from '../core/training/metrics-schema.ts';

/** The process clock, in seconds. */
export const secondsNow = (): number => performance.now() / 1000;

export interface Evaluation {
  loss: number;
  accuracy: number;
  seconds: number;
}

/** One update the round applied. Times are on the process clock (secondsNow). */
export interface TimedUpdate {
  slot: number;
  numSamples: number;
  trainLoss: number;
  trainSeconds: number;
  /** When its task left the aggregator. */
  sentAt: number;
  /** When the update arrived. */
  receivedAt: number;
  /** async mode: versions between the task's model and the one the update was applied to. */
  staleness?: number;
  /** async mode: mixing x staleness weight the update was applied with. */
  weight?: number;
  /** The trainer's step latency and memory for this task, when it sent them. */
  stats?: TrainerRoundStats;
}

/** What a loop knows of a round once its model is merged, before it is evaluated. */
export interface RoundDraft {
  round: number;
  /** When the round started (secondsNow): its tasks went out. */
  startedAt: number;
  updates: TimedUpdate[];
  mergeSeconds: number;
  bytesSent: number;
  bytesReceived: number;
  /** async mode: the model version this round evaluates. */
  version?: number;
  /**
   * Seconds the round waited, its updates in, for the previous round's record before its merge:
   * the previous evaluation's time, counted in that round's roundSeconds, not in this one's.
   */
  waitedSeconds?: number;
}

/** The figures only an evaluation gives; a checkpointed round still lacks them. */
type EvaluationField = 'testLoss' | 'testAccuracy' | 'evalSeconds' | 'evalOverlapSeconds' | 'samplesPerSecond';

/** The fields of a round record a round's own events decide (the recorder adds the rest). */
export type RoundFigures = Omit<RoundRecord, 'kind' | 'runId' | keyof RunKey | 'time' | 'elapsedSeconds' | 'samplesSeen' | 'updatesApplied'>;

/**
 * A round merged and checkpointed, not yet evaluated: its record without the evaluation's figures,
 * and the samples its updates trained on. `roundSeconds` here runs from its start to its
 * checkpoint; the record adds the evaluation seconds that did not overlap the next round.
 */
export type TrainedFigures = Omit<RoundFigures, EvaluationField> & { samples: number };

/** A checkpointed round's record so far: what its checkpoint stores for a resumed run to evaluate. */
export type TrainedRound = Omit<RoundRecord, EvaluationField | 'time' | 'aggregatorPeakRssBytes'> & { samples: number };

export function trainedFigures(d: RoundDraft, checkpointedAt: number): TrainedFigures {
  const u = d.updates;
  const samples = samplesOf(u);
  return {
    round: d.round,
    trainLoss: samples ? u.reduce((s, x) => s + x.trainLoss * x.numSamples, 0) / samples : null,
    roundSeconds: Math.max(0, checkpointedAt - d.startedAt - (d.waitedSeconds ?? 0)),
    trainSeconds: u.reduce((m, x) => Math.max(m, x.trainSeconds), 0),
    transferSeconds: mean(u, (x) => Math.max(0, x.receivedAt - x.sentAt - x.trainSeconds)),
    mergeSeconds: d.mergeSeconds,
    bytesSent: d.bytesSent,
    bytesReceived: d.bytesReceived,
    trainersReporting: new Set(u.map((x) => x.slot)).size,
    samples,
    ...(d.version !== undefined ? { version: d.version } : {}),
    ...stalenessFigures(u),
    ...trainerFigures(u),
  };
}

/**
 * The figures an evaluation adds to a trained round. `overlapSeconds`: how much of the evaluation
 * ran while the next round trained; only the rest joins the round's seconds.
 */
export function evaluatedFigures(t: Pick<TrainedFigures, 'roundSeconds' | 'samples'>, ev: Evaluation, overlapSeconds: number): Pick<RoundRecord, EvaluationField | 'roundSeconds'> {
  const evalOverlapSeconds = Math.min(ev.seconds, Math.max(0, overlapSeconds));
  const roundSeconds = t.roundSeconds + ev.seconds - evalOverlapSeconds;
  return {
    testLoss: ev.loss,
    testAccuracy: ev.accuracy,
    evalSeconds: ev.seconds,
    evalOverlapSeconds,
    roundSeconds,
    samplesPerSecond: roundSeconds > 0 ? t.samples / roundSeconds : 0,
  };
}

/** Each applied update's trainer figures, by slot; nothing when no trainer sent any. */
function trainerFigures(u: TimedUpdate[]): Pick<RoundRecord, 'trainers'> {
  const trainers: TrainerRoundFigures[] = u.flatMap((x) => (x.stats ? [{ slot: x.slot, ...x.stats }] : []));
  return trainers.length ? { trainers } : {};
}

export function samplesOf(updates: TimedUpdate[]): number {
  return updates.reduce((n, x) => n + x.numSamples, 0);
}

/** async mode: the staleness and weights of the round's updates; nothing for rounds without them. */
function stalenessFigures(u: TimedUpdate[]): Pick<RoundRecord, 'staleness' | 'maxStaleness' | 'meanWeight'> {
  if (u.length === 0 || u.some((x) => x.staleness === undefined)) return {};
  return {
    staleness: mean(u, (x) => x.staleness ?? 0),
    maxStaleness: u.reduce((m, x) => Math.max(m, x.staleness ?? 0), 0),
    meanWeight: mean(u, (x) => x.weight ?? 0),
  };
}

function mean<T>(xs: T[], f: (x: T) => number): number {
  return xs.length ? xs.reduce((s, x) => s + f(x), 0) / xs.length : 0;
}

/** Round 0: the model before training, evaluated with no updates (async mode: version 0). */
export function initialDraft(version?: number): RoundDraft {
  return { round: 0, startedAt: secondsNow(), updates: [], mergeSeconds: 0, bytesSent: 0, bytesReceived: 0, ...(version !== undefined ? { version } : {}) };
}
