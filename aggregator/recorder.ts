/**
 * A run's bookkeeping: its run record (start and end), its running totals, and each round's two
 * commits: the checkpoint (model and the round's figures so far, written atomically) as soon as the
 * round is merged, then the round record once its evaluation ends. A crash in between loses
 * nothing: resume finds the checkpointed round missing from the store and evaluates it again. It
 * also tells the metaserver where the run stands.
 */
import type { Experiment } from '../core/config.ts';
import type { LayerSpec } from '../core/model/spec.ts';
import type { Weights } from '../core/model/tensor.ts';
import { writeCheckpoint } from '../core/results/checkpoint.ts';
import { removeStaleTemps } from '../core/atomic-file.ts';
import { StorageError } from '../core/results/storage-error.ts';
import type { ResultsStore } from '../core/results/store.ts';
import { runKeyFields } from '../core/results/schema.ts';
import { runSummary, summaryField, type RunSummary } from '../core/results/summary.ts';
import type { RoundRecord, RunEnvironment, RunRecord, StepRecord } from '../core/results/types.ts';
import type { MessageOf, RunState } from '../core/wire/schema.ts';
import type { DataStatistics } from '../core/data/statistics.ts';
import { peakRssBytes } from '../core/results/environment.ts';
import { buildProfile, writeProfile } from '../core/results/profile.ts';
import { checkpointPath, type RunStart, type RunTotals } from './plan.ts';
import { evaluatedFigures, samplesOf, secondsNow, trainedFigures, type Evaluation, type RoundDraft, type TrainedRound } from './round-record.ts';
import { crashPoint } from './crash-point.ts';

export interface RunStatus {
  state: RunState;
  round: number;
  rounds: number;
  message?: string;
}

export interface RecorderOptions {
  store: ResultsStore;
  config: Experiment;
  layers: LayerSpec[];
  start: RunStart;
  environment: RunEnvironment;
  /** What the run trains and tests on, for its profile. */
  data: DataStatistics;
  /** Trainer id -> slot, saved with each checkpoint. */
  slots: () => Record<string, number>;
  log: (line: string) => void;
}

export type RunEnd = 'completed' | 'failed' | 'interrupted';

export class RunRecorder {
  private readonly run: RunRecord;
  private readonly totals: RunTotals;
  private readonly startedAt = new Date();
  /** secondsNow() + this = seconds since the run started, across resumes. */
  private readonly elapsedOffset: number;
  private lastRound: number;
  private report: (s: RunStatus) => void = () => {};
  private stepLogBroken = false;

  constructor(private readonly o: RecorderOptions) {
    const { start, config } = o;
    for (const name of removeStaleTemps(this.checkpointFile)) o.log(`aggregator: removed ${name}, a checkpoint write left unfinished by a process that is gone`);
    this.totals = { ...start.totals };
    this.elapsedOffset = start.totals.elapsedSeconds - secondsNow();
    this.lastRound = Math.max(0, start.firstRound - 1);
    this.run = {
      kind: 'run',
      runId: start.runId,
      key: start.key,
      keyFields: runKeyFields(config),
      status: 'started',
      config,
      startedAt: this.startedAt.toISOString(),
      plannedRounds: start.plannedRounds,
      environment: o.environment,
    };
  }

  get runId(): string {
    return this.run.runId;
  }

  private get checkpointFile(): string {
    return checkpointPath(this.o.store.dir, this.o.start.key);
  }

  /** Records that the run started; from now on the run's status also goes to `report`. */
  start(report: (s: RunStatus) => void): void {
    // Reporting first: when the store cannot take the start (a full disk), the failure still goes out.
    this.report = report;
    this.o.store.appendRun(this.run);
    this.status('waiting');
  }

  /**
   * Checkpoints `weights` with the round's figures so far (totals included), atomically, and
   * resolves with those figures: the round record still to write once the model is evaluated.
   */
  async checkpoint(weights: Weights, draft: RoundDraft): Promise<TrainedRound> {
    const { o, totals } = this;
    totals.updatesApplied += draft.updates.length;
    totals.samplesSeen += samplesOf(draft.updates);
    if (draft.version !== undefined) totals.version = draft.version;
    const writeStart = secondsNow();
    const trained: TrainedRound = {
      kind: 'round',
      runId: this.run.runId,
      ...runKeyFields(o.config),
      ...trainedFigures(draft, writeStart),
      elapsedSeconds: this.elapsedOffset + writeStart,
      samplesSeen: totals.samplesSeen,
      updatesApplied: totals.updatesApplied,
    };
    const metadata = { runId: this.run.runId, key: this.run.key, round: String(trained.round), slots: JSON.stringify(o.slots()), record: JSON.stringify(trained) };
    // A failed write names the results directory, as a failed append does.
    await writeCheckpoint(this.checkpointFile, o.layers, weights, metadata).catch((e) => Promise.reject(e instanceof StorageError ? e.naming(o.store.dir) : e));
    crashPoint('checkpointed', trained.round, o.log);
    // The write is part of the round's time (the stored figures, written before it, lack it).
    return { ...trained, roundSeconds: trained.roundSeconds + secondsNow() - writeStart };
  }

  /**
   * Appends the record of a checkpointed round with its evaluation; `overlapSeconds` of the
   * evaluation ran while the next round trained.
   */
  record(trained: TrainedRound, ev: Evaluation, overlapSeconds: number): RoundRecord {
    const { samples: _, ...figures } = trained;
    const record: RoundRecord = {
      ...figures,
      ...evaluatedFigures(trained, ev, overlapSeconds),
      time: new Date().toISOString(),
      aggregatorPeakRssBytes: peakRssBytes(),
    };
    this.o.store.appendRound(record);
    this.lastRound = record.round;
    const overlap = record.evalOverlapSeconds ? `, ${record.evalOverlapSeconds.toFixed(1)} s of it while round ${record.round + 1} trained` : '';
    this.o.log(`aggregator: round ${record.round}: test accuracy ${record.testAccuracy.toFixed(4)}, loss ${record.testLoss.toFixed(4)} (eval ${record.evalSeconds.toFixed(1)} s${overlap})`);
    crashPoint('recorded', record.round, this.o.log);
    this.status('training');
    return record;
  }

  /**
   * Records how the run ended, with its summary and `figures` (the loop's counts). The status goes
   * out even when the store cannot be written (a full disk), so observers still hear why.
   */
  finish(end: RunEnd, error: string | undefined, figures: RunSummary): void {
    const { store } = this.o;
    try {
      store.appendRun({
        ...this.run,
        status: end,
        endedAt: new Date().toISOString(),
        wallSeconds: (Date.now() - this.startedAt.getTime()) / 1000,
        ...(error ? { error } : {}),
        ...summaryField({ ...runSummary(store.roundsOf(this.run.runId)), ...figures }),
      });
      this.writeProfile(end, error);
    } finally {
      this.status(end === 'completed' ? 'completed' : 'failed', error);
    }
    if (end === 'completed') this.o.log(`aggregator: run ${this.run.runId} completed`);
  }

  /**
   * Appends a trainer's step-log point to steps.jsonl as it arrives. A point that cannot be
   * written (a full disk) is dropped with one line: the round's own commit reports the fault.
   */
  step(slot: number, msg: MessageOf<'steps'>): void {
    if (this.stepLogBroken) return;
    const { point } = msg;
    const record: StepRecord = {
      kind: 'step',
      runId: this.run.runId,
      slot,
      round: msg.seq ?? msg.round,
      globalStep: msg.globalStep,
      epoch: point.epoch,
      loss: point.loss,
      intervalSteps: point.intervalSteps,
      samples: point.samples,
      samplesPerSecond: point.samplesPerSecond,
      learningRate: point.learningRate,
      time: new Date(point.time).toISOString(),
      elapsedSeconds: this.elapsedOffset + secondsNow(),
    };
    try {
      this.o.store.appendStep(record);
    } catch (e) {
      this.stepLogBroken = true;
      this.o.log(`aggregator: step log stopped: ${(e as Error).message}`);
    }
  }

  /**
   * logs/<key>/profile.json: the run described whole (config, environment, timing, trainers, data).
   * Written whole or not at all; a failure is one line, not the run's end (its record is written).
   */
  private writeProfile(end: RunEnd, error: string | undefined): void {
    const { store } = this.o;
    const latest = store.latestRuns().get(this.run.runId) ?? this.run;
    try {
      this.o.log(`aggregator: wrote ${this.profile(end, error, latest)}`);
    } catch (e) {
      this.o.log(`aggregator: could not write the run's profile: ${(e as Error).message}`);
    }
  }

  private profile(end: RunEnd, error: string | undefined, latest: RunRecord): string {
    const { store, config, data } = this.o;
    return writeProfile(store.dir, buildProfile({
      runId: this.run.runId,
      key: this.run.key,
      keyFields: this.run.keyFields,
      status: end,
      startedAt: this.run.startedAt,
      endedAt: latest.endedAt ?? new Date().toISOString(),
      wallSeconds: latest.wallSeconds ?? (Date.now() - this.startedAt.getTime()) / 1000,
      ...(error ? { error } : {}),
      config,
      environment: this.run.environment,
      data,
      rounds: store.roundsOf(this.run.runId),
      ...(latest.summary ? { summary: latest.summary } : {}),
    }));
  }

  private status(state: RunState, message?: string): void {
    this.report({ state, round: this.lastRound, rounds: this.o.start.plannedRounds, ...(message ? { message } : {}) });
  }
}
