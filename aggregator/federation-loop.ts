/**
 * The round loop behind one interface (Flower's Server.fit over a Strategy): the trainer server
 * hands it joins, departures and updates; run() trains until the run's last evaluation is
 * recorded. SyncLoop runs rounds (every trainer, then merge) and evaluates each round while the
 * next one trains; AsyncLoop applies each update as it arrives. Both checkpoint, evaluate and
 * record through the same context.
 */
import type { Experiment } from '../core/config.ts';
import type { Weights } from '../core/model/tensor.ts';
import type { RoundRecord } from '../core/results/types.ts';
import type { RunSummary } from '../core/results/summary.ts';
import type { MessageOf } from '../core/wire/schema.ts';
import type { SlotHolder, TrainerRegistry } from './registry.ts';
import type { Outbox } from './outbox.ts';
import type { RunTotals } from './plan.ts';
import type { Evaluation, RoundDraft, TrainedRound } from './round-record.ts';
import { crashPoint } from './crash-point.ts';

export interface FederationLoop<C> {
  /** A trainer joined or came back (registry already updated). */
  onJoin(h: SlotHolder<C>): void;
  /** A trainer's connection closed; it keeps its slot. */
  onLeave(h: SlotHolder<C>): void;
  /**
   * A trainer announced a ready update: it gets a grant when a credit is free (UpdateCredits). Returns
   * why the announcement was refused (the caller tells the trainer), or null.
   */
  onReady(h: SlotHolder<C>, msg: MessageOf<'ready'>): string | null;
  /** Takes an update, or returns why it was refused (the caller tells the trainer). */
  onUpdate(h: SlotHolder<C>, msg: MessageOf<'update'>): string | null;
  /** Trains and records every evaluation still to do; resolves with the final model. */
  run(signal: AbortSignal): Promise<Weights>;
  /** This process's counts for the run record's summary. */
  summary(): RunSummary;
}

export interface LoopContext<C> {
  config: Experiment;
  job: string;
  registry: TrainerRegistry<C>;
  outbox: Outbox<C>;
  log: (line: string) => void;
  /**
   * Evaluates a model on the test set. Reads `weights` until its promise settles: the sync loop
   * writes the next round's model over the same arrays only after that.
   */
  evaluate(weights: Weights): Promise<Evaluation>;
  /** Checkpoints a merged model with its round's figures so far (RunRecorder.checkpoint). */
  checkpoint(weights: Weights, draft: RoundDraft): Promise<TrainedRound>;
  /** Appends a checkpointed round's record with its evaluation (RunRecorder.record). */
  record(trained: TrainedRound, ev: Evaluation, overlapSeconds: number): RoundRecord;
}

/** Where the loop starts: the model, the first round still to train, the totals so far. */
export interface LoopStart {
  weights: Weights;
  firstRound: number;
  totals: RunTotals;
  /** A checkpointed round the store has no record of: `weights` is its model, to evaluate again. */
  unrecorded: TrainedRound | null;
}

/** Evaluates a checkpointed round and appends its record, nothing overlapped. */
export async function evaluateAndRecord<C>(ctx: LoopContext<C>, weights: Weights, trained: TrainedRound): Promise<RoundRecord> {
  const evaluation = ctx.evaluate(weights);
  crashPoint('evaluating', trained.round, ctx.log);
  return ctx.record(trained, await evaluation, 0);
}

/** Checkpoints, evaluates and records a round in turn: a loop that does not overlap evaluation. */
export async function commitRound<C>(ctx: LoopContext<C>, weights: Weights, draft: RoundDraft): Promise<RoundRecord> {
  return evaluateAndRecord(ctx, weights, await ctx.checkpoint(weights, draft));
}
