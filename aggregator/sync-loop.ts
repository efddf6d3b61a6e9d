/**
 * Synchronous rounds (slice and fedavg modes): round r sends every trainer its task, collects the
 * updates under the round timeout (RoundCollector: failures as data, minTrainers), merges them
 * with the aggregation rule and checkpoints the model. Round r+1's tasks then go out at once, and
 * round r is evaluated while the trainers train (OverlappedEvaluation); its record is appended
 * when the evaluation ends, always before round r+1's merge and checkpoint.
 */
import { minTrainersOf } from '../core/config.ts';
import type { AggregationRule, Assignment, RoundMerge } from '../core/aggregation/rules.ts';
import type { Weights } from '../core/model/tensor.ts';
import type { MessageOf } from '../core/wire/schema.ts';
import type { TaskSeconds } from '../core/results/summary.ts';
import type { SlotHolder } from './registry.ts';
import { RoundCollector } from './round-collector.ts';
import { TaskTimes } from './task-times.ts';
import { checkAnswers, checkUpdate, sendGrant, taskMessage, taskWeightsPerPlan, type OpenTask } from './tasks.ts';
import { UpdateCredits } from './update-credits.ts';
import { initialDraft, secondsNow, type RoundDraft, type TimedUpdate } from './round-record.ts';
import type { FederationLoop, LoopContext, LoopStart } from './federation-loop.ts';
import { OverlappedEvaluation } from './overlapped-evaluation.ts';
import { abortable, interruptedBy } from './waits.ts';
import { markMemory } from '../core/compute/memory-probe.ts';

/**
 * The round being collected: each slot's task, the tasks sent and not yet answered, and the merge
 * every accepted update is added to as it arrives (no update's delta is kept after that).
 */
interface OpenRound {
  round: number;
  collector: RoundCollector<TimedUpdate>;
  merge: RoundMerge;
  /** Seconds spent adding updates to the merge so far. */
  mergeSeconds: number;
  tasks: Map<number, { msg: MessageOf<'task'>; assignment: Assignment }>;
  open: Map<number, OpenTask>;
  /** Who may send an update now; the credits end with the round. */
  credits: UpdateCredits;
}

export class SyncLoop<C> implements FederationLoop<C> {
  private global: Weights;
  private current: OpenRound | null = null;
  private readonly taskTimes = new TaskTimes();

  constructor(
    private readonly ctx: LoopContext<C>,
    private readonly rule: AggregationRule,
    private readonly start: LoopStart,
  ) {
    this.global = start.weights;
  }

  /** A trainer that joins, or comes back mid-round, gets the round's task (again). */
  onJoin(h: SlotHolder<C>): void {
    this.send(h);
  }

  onLeave(h: SlotHolder<C>): void {
    this.current?.credits.release(h.slot);
    this.current?.collector.away(h.slot);
  }

  onReady(h: SlotHolder<C>, msg: MessageOf<'ready'>): string | null {
    const r = this.current;
    const reason = checkAnswers(msg, this.ctx.job, h.slot, r?.open.get(h.slot));
    if (reason !== null || !r) return reason ?? 'no round is running';
    r.credits.ready(h.slot);
    if (r.credits.queued().includes(h.slot)) {
      const sending = r.credits.granted().sort((a, b) => a - b);
      this.ctx.log(`aggregator: round ${r.round}: ${h.id} (slot ${h.slot}) waits to send its update while slot${sending.length === 1 ? '' : 's'} ${sending.join(', ')} send${sending.length === 1 ? 's' : ''}`);
    }
    return null;
  }

  /** Takes an update into the round's merge; its sender's credit goes to the next trainer waiting as the merge starts (or at once, if refused). */
  onUpdate(h: SlotHolder<C>, msg: MessageOf<'update'>): string | null {
    const r = this.current;
    try {
      return this.take(r, h, msg);
    } finally {
      r?.credits.release(h.slot);
    }
  }

  private take(r: OpenRound | null, h: SlotHolder<C>, msg: MessageOf<'update'>): string | null {
    const task = r?.open.get(h.slot);
    const reason = checkUpdate(msg, this.ctx.job, h.slot, task, this.rule);
    if (reason !== null || !r || !task) return reason ?? 'no round is running';
    r.open.delete(h.slot);
    const m = msg.metrics;
    const accepted = r.collector.accept(h.slot, {
      slot: h.slot,
      numSamples: msg.numSamples,
      trainLoss: m.trainLoss,
      trainSeconds: m.trainSeconds,
      sentAt: task.sentAt,
      receivedAt: secondsNow(),
      ...(m.stats ? { stats: m.stats } : {}),
    });
    if (!accepted) return 'the round is over';
    // The next trainer may start writing while this update merges: until the merge ends its bytes
    // wait in the sockets' buffers, so one update at a time is held here and no transfer waits for a merge.
    r.credits.release(h.slot);
    // The round's end awaits the collector in a later microtask, so this add comes before result().
    const t0 = secondsNow();
    r.merge.add({ assignment: task.assignment, delta: msg.delta, numSamples: msg.numSamples });
    r.mergeSeconds += secondsNow() - t0;
    this.ctx.log(`aggregator: round ${r.round}: update from rank ${msg.rank} (${h.id}, ${msg.numSamples} samples, loss ${m.trainLoss.toFixed(4)}, ${m.trainSeconds.toFixed(1)} s)`);
    return null;
  }

  async run(signal: AbortSignal): Promise<Weights> {
    const { ctx, start } = this;
    const evaluation = new OverlappedEvaluation(ctx);
    try {
      if (start.unrecorded) evaluation.queue(start.unrecorded, this.global);
      else if (start.firstRound === 0) evaluation.queue(await ctx.checkpoint(this.global, initialDraft()), this.global);
      for (let round = Math.max(1, start.firstRound); round <= ctx.config.federation.rounds; round++) {
        // The previous round's record comes before this round's merge, which may write the new model
        // over the arrays that evaluation reads, and before this checkpoint, which replaces the one
        // it would resume from.
        const draft = await this.train(round, signal, { started: () => evaluation.start(), drained: () => evaluation.drain() });
        evaluation.queue(await ctx.checkpoint(this.global, draft), this.global);
      }
      await evaluation.drain();
    } finally {
      await evaluation.settle();
    }
    return this.global;
  }

  summary(): Partial<TaskSeconds> {
    return this.taskTimes.summary();
  }

  /**
   * Sends round `round`'s tasks, starts the previous round's evaluation, waits for the updates, waits
   * for that evaluation to be recorded and merges the updates into the global model.
   */
  private async train(round: number, signal: AbortSignal, previous: { started: () => void; drained: () => Promise<number> }): Promise<RoundDraft> {
    const { ctx } = this;
    if (signal.aborted) throw interruptedBy(signal);
    const startedAt = secondsNow();
    const before = ctx.outbox.traffic();
    const r = this.openRound(round);
    for (const h of ctx.registry.connected()) this.send(h);
    const sentMB = (ctx.outbox.traffic().sent - before.sent) / 1e6;
    ctx.log(`aggregator: round ${round}/${ctx.config.federation.rounds}: sent ${ctx.registry.connected().length} tasks (${sentMB.toFixed(1)} MB)`);
    markMemory('aggregator', round, 'tasks sent');
    previous.started();
    let outcome;
    try {
      outcome = await abortable(r.collector.done, signal, () => r.collector.cancel(interruptedBy(signal)));
    } finally {
      this.current = null;
    }
    if (outcome.missing.length) {
      ctx.log(`aggregator: round ${round}: proceeding with ${outcome.updates.size}/${ctx.config.federation.worldSize} updates; missing slots ${outcome.missing.join(', ')} keep their old values`);
    }
    markMemory('aggregator', round, 'updates received');
    const updates = [...outcome.updates.values()];
    for (const u of updates) this.taskTimes.add(u.slot, u.trainSeconds);
    const waitedSeconds = await previous.drained();
    const mergeStart = secondsNow();
    // Nothing reads the old model now: this round's tasks are written (unless one still goes to a slow
    // trainer) and its evaluation, which read it layer by layer, is over; so the new model takes its
    // arrays instead of a fresh 4 bytes a parameter.
    this.global = r.merge.result({ overBase: ctx.outbox.idle() });
    const mergeSeconds = r.mergeSeconds + secondsNow() - mergeStart;
    markMemory('aggregator', round, 'merged');
    ctx.log(`aggregator: round ${round}: merged in ${mergeSeconds.toFixed(3)} s (${r.mergeSeconds.toFixed(3)} s of it as updates arrived)`);
    const after = ctx.outbox.traffic();
    return { round, startedAt, updates, mergeSeconds, waitedSeconds, bytesSent: after.sent - before.sent, bytesReceived: after.received - before.received };
  }

  private openRound(round: number): OpenRound {
    const { config, job, registry } = this.ctx;
    const fed = config.federation;
    const tasks: OpenRound['tasks'] = new Map();
    const weightsFor = taskWeightsPerPlan(this.rule, this.global);
    for (let slot = 0; slot < fed.worldSize; slot++) {
      const assignment = this.rule.assign(slot, round);
      tasks.set(slot, { assignment, msg: taskMessage(config, job, weightsFor(assignment), assignment, { round }) });
    }
    const describe = (missing: number[]) =>
      missing.map((s) => `slot ${s} (${registry.bySlot(s)?.id ?? 'never joined'}${registry.bySlot(s)?.conn ? '' : ', disconnected'})`).join(', ');
    const collector = new RoundCollector<TimedUpdate>(round, fed.worldSize, minTrainersOf(config), fed.roundTimeoutS, describe);
    const merge = this.rule.startMerge(this.global, [...tasks.values()].map((t) => t.assignment));
    const open = new Map<number, OpenTask>();
    const credits = new UpdateCredits((slot) => sendGrant(this.ctx, slot, open.get(slot)));
    this.current = { round, collector, tasks, open, credits, merge, mergeSeconds: 0 };
    return this.current;
  }

  /** Sends the trainer in `h` its task of the open round, unless it already answered it. */
  private send(h: SlotHolder<C>): void {
    const r = this.current;
    const task = r?.tasks.get(h.slot);
    if (!r || !task || !h.conn || r.collector.has(h.slot)) return;
    if (this.ctx.outbox.send(h.conn, task.msg) === 0) return;
    r.open.set(h.slot, { ...task, sentAt: secondsNow() });
    r.collector.started(h.slot);
  }
}
