/**
 * The round loop behind one interface (Flower's Server.fit over a Strategy): the trainer server
 * hands it joins, departures and updates; run() trains until the run's last evaluation is
 * recorded. SyncLoop runs rounds (every trainer, then merge); AsyncLoop applies each update as it
 * arrives. Both evaluate and record through the same context.
 */
import { markMemory } from '../core/compute/memory-probe.ts';
import type { Experiment } from '../core/config.ts';
import type { Weights } from '../core/model/tensor.ts';
import type { RoundRecord } from '../core/results/types.ts';
import type { RunSummary } from '../core/results/summary.ts';
import type { MessageOf } from '../core/wire/schema.ts';
import type { SlotHolder, TrainerRegistry } from './registry.ts';
import type { Outbox } from './outbox.ts';
import type { RunTotals } from './plan.ts';
import type { Evaluation, RoundDraft } from './round-record.ts';

export interface FederationLoop<C> {
  /** A trainer joined or came back (registry already updated). */
  onJoin(h: SlotHolder<C>): void;
  /** A trainer's connection closed; it keeps its slot. */
  onLeave(h: SlotHolder<C>): void;
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
  /** Evaluates a model on the test set. */
  evaluate(weights: Weights): Promise<Evaluation>;
  /** Checkpoints the model and records the round (RunRecorder.commit). */
  commit(weights: Weights, draft: RoundDraft, ev: Evaluation): Promise<RoundRecord>;
}

/** Where the loop starts: the model, the first evaluation index still to record, the totals so far. */
export interface LoopStart {
  weights: Weights;
  firstRound: number;
  totals: RunTotals;
}

/** Evaluates and commits a round: the step a loop runs once a round's model is merged. */
export async function evaluateAndCommit<C>(ctx: LoopContext<C>, weights: Weights, draft: RoundDraft): Promise<RoundRecord> {
  const ev = await ctx.evaluate(weights);
  markMemory('aggregator', draft.round, 'evaluated');
  const record = await ctx.commit(weights, draft, ev);
  markMemory('aggregator', draft.round, 'committed');
  return record;
}
