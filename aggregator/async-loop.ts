/**
 * The aggregator's asynchronous mode: every trainer always holds a task on the newest model; an
 * update is applied as soon as it arrives (or every bufferSize updates), weighted by its
 * staleness, and the trainer gets the new model at once. The run applies rounds x worldSize
 * updates, as many local trainings as `rounds` synchronous rounds, and evaluates every evalEvery
 * updates; each evaluation is a round (its evaluation index) recorded with the model version.
 * Tasks carry their own per-slot sequence number (`seq`), which their updates echo.
 */
import type { AggregationRule } from '../core/aggregation/rules.ts';
import { addScaledDeltas, asyncSettings, stalenessWeight, type AsyncSettings } from '../core/aggregation/async-rule.ts';
import { FedsliceError } from '../core/errors.ts';
import type { Weights } from '../core/model/tensor.ts';
import type { MessageOf } from '../core/wire/schema.ts';
import type { AsyncCounts, TaskSeconds } from '../core/results/summary.ts';
import type { SlotHolder } from './registry.ts';
import { TaskTimes } from './task-times.ts';
import { checkAnswers, checkUpdate, sendGrant, taskMessage, type OpenTask } from './tasks.ts';
import { UpdateCredits } from './update-credits.ts';
import { initialDraft, secondsNow, type TimedUpdate } from './round-record.ts';
import { commitRound, evaluateAndRecord, type FederationLoop, type LoopContext, type LoopStart } from './federation-loop.ts';
import type { Traffic } from './outbox.ts';
import { interruptedBy } from './waits.ts';

/** Where an async run stands; restored from the last checkpoint on --resume. */
interface AsyncProgress {
  version: number;
  applied: number;
  /** The last evaluation index recorded. */
  round: number;
}

interface Arrived {
  slot: number;
  version: number;
  delta: Weights;
  numSamples: number;
  trainLoss: number;
  trainSeconds: number;
  sentAt: number;
  receivedAt: number;
  stats?: TimedUpdate['stats'];
}

/** The updates applied since the last evaluation. */
interface Window {
  startedAt: number;
  traffic: Traffic;
  updates: TimedUpdate[];
  mergeSeconds: number;
}

interface SlotStats {
  updates: number;
  stalenessSum: number;
  weightSum: number;
}

export class AsyncLoop<C> implements FederationLoop<C> {
  readonly settings: AsyncSettings;
  private global: Weights;
  private readonly progress: AsyncProgress;
  private readonly budget: number;
  private readonly outstanding = new Map<number, OpenTask>();
  /**
   * Who may send an update now. A credit comes back when the update arrives, not when it is applied:
   * the buffer waits for bufferSize arrivals, more than the credits may be.
   */
  private readonly credits = new UpdateCredits((slot) => sendGrant(this.ctx, slot, this.outstanding.get(slot)));
  private readonly seqs = new Map<number, number>();
  private readonly queue: Arrived[] = [];
  private wake: (() => void) | null = null;
  /** The pending wait for an update: its timer and how to fail it. */
  private waiting: { timer: NodeJS.Timeout; reject: (e: Error) => void } | null = null;
  private cancelled: Error | null = null;
  private dispatched: number;
  private started = false;
  private readonly stats = new Map<number, SlotStats>();
  private readonly counts = { received: 0, refused: 0, lost: 0 };
  private readonly taskTimes = new TaskTimes();

  constructor(
    private readonly ctx: LoopContext<C>,
    private readonly rule: AggregationRule,
    private readonly start: LoopStart,
  ) {
    const fed = ctx.config.federation;
    this.settings = asyncSettings(fed);
    this.budget = fed.rounds * fed.worldSize;
    this.global = start.weights;
    this.progress = { version: start.totals.version, applied: start.totals.updatesApplied, round: Math.max(0, start.firstRound - 1) };
    this.dispatched = this.progress.applied;
  }

  onJoin(h: SlotHolder<C>): void {
    if (this.started) this.dispatch(h);
  }

  onLeave(h: SlotHolder<C>): void {
    this.credits.release(h.slot);
    if (this.outstanding.delete(h.slot)) {
      // Its task is lost; the budget gets it back, and the trainer a new one if it returns.
      this.dispatched--;
      this.counts.lost++;
    }
  }

  onReady(h: SlotHolder<C>, msg: MessageOf<'ready'>): string | null {
    const reason = checkAnswers(msg, this.ctx.job, h.slot, this.outstanding.get(h.slot));
    if (reason === null) this.credits.ready(h.slot);
    return reason;
  }

  /** Queues an update to apply; its sender's credit goes to the next trainer waiting. */
  onUpdate(h: SlotHolder<C>, msg: MessageOf<'update'>): string | null {
    try {
      return this.take(h, msg);
    } finally {
      this.credits.release(h.slot);
    }
  }

  private take(h: SlotHolder<C>, msg: MessageOf<'update'>): string | null {
    const task = this.outstanding.get(h.slot);
    const reason = checkUpdate(msg, this.ctx.job, h.slot, task, this.rule);
    if (reason !== null || !task) {
      this.counts.refused++;
      return reason ?? `slot ${h.slot} holds no task`;
    }
    this.outstanding.delete(h.slot);
    this.counts.received++;
    this.queue.push({
      slot: h.slot,
      version: task.msg.version ?? 0,
      delta: msg.delta,
      numSamples: msg.numSamples,
      trainLoss: msg.metrics.trainLoss,
      trainSeconds: msg.metrics.trainSeconds,
      sentAt: task.sentAt,
      receivedAt: secondsNow(),
      ...(msg.metrics.stats ? { stats: msg.metrics.stats } : {}),
    });
    this.wake?.();
    return null;
  }

  /** Applies updates until the budget is spent; roundTimeoutS bounds each wait for the next one. */
  async run(signal: AbortSignal): Promise<Weights> {
    if (signal.aborted) throw interruptedBy(signal);
    const stop = () => this.cancel(interruptedBy(signal));
    signal.addEventListener('abort', stop, { once: true });
    try {
      if (this.start.unrecorded) await evaluateAndRecord(this.ctx, this.global, this.start.unrecorded);
      else if (this.start.firstRound === 0) await commitRound(this.ctx, this.global, initialDraft(0));
      await this.applyAll();
      return this.global;
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  /**
   * Counts of this process (a resumed run starts them afresh): updates received, refused and
   * lost with a departed trainer, the model version reached, per-task training times, and per
   * trainer slot the updates applied with their mean staleness and weight.
   */
  summary(): Partial<TaskSeconds> & AsyncCounts {
    const out: Partial<TaskSeconds> & AsyncCounts = {
      ...this.taskTimes.summary(),
      updatesReceived: this.counts.received,
      updatesRefused: this.counts.refused,
      tasksLost: this.counts.lost,
      finalVersion: this.progress.version,
    };
    for (const [slot, s] of [...this.stats.entries()].sort((a, b) => a[0] - b[0])) {
      out[`updates.slot${slot}`] = s.updates;
      out[`meanStaleness.slot${slot}`] = s.stalenessSum / s.updates;
      out[`meanWeight.slot${slot}`] = s.weightSum / s.updates;
    }
    return out;
  }

  /** Stops the run: a pending wait fails with `reason` and its timer goes, so nothing holds the process. */
  cancel(reason: Error): void {
    this.cancelled = reason;
    const w = this.waiting;
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting = null;
    this.wake = null;
    w.reject(reason);
  }

  private async applyAll(): Promise<void> {
    const { settings, ctx } = this;
    this.started = true;
    for (const h of ctx.registry.connected()) this.dispatch(h);
    ctx.log(`aggregator: async: ${this.budget - this.progress.applied} updates to apply (mixing ${settings.mixing}, staleness ${settings.staleness.fn}, buffer ${settings.bufferSize}, evaluation every ${settings.evalEvery})`);
    let window = this.newWindow();
    let buffer: Arrived[] = [];
    while (this.progress.applied + buffer.length < this.budget) {
      const u = await this.next(ctx.config.federation.roundTimeoutS);
      buffer.push(u);
      const last = this.progress.applied + buffer.length === this.budget;
      if (buffer.length < settings.bufferSize && !last) {
        this.dispatchSlot(u.slot);
        continue;
      }
      this.apply(buffer, window);
      for (const b of buffer) this.dispatchSlot(b.slot);
      const evalDue = Math.floor(this.progress.applied / settings.evalEvery) > Math.floor((this.progress.applied - buffer.length) / settings.evalEvery);
      buffer = [];
      if (evalDue || this.progress.applied === this.budget) {
        await this.commit(window);
        window = this.newWindow();
      }
    }
  }

  /** Adds the buffered deltas to the global model, each scaled by mixing x its staleness weight. */
  private apply(buffer: Arrived[], window: Window): void {
    const { settings } = this;
    const mergeStart = secondsNow();
    const scaled = buffer.map((b) => {
      const staleness = this.progress.version - b.version;
      return { b, staleness, weight: settings.mixing * stalenessWeight(settings.staleness, staleness) };
    });
    this.global = addScaledDeltas(
      this.global,
      scaled.map((s) => ({ delta: s.b.delta, scale: s.weight / buffer.length })),
    );
    this.progress.version++;
    window.mergeSeconds += secondsNow() - mergeStart;
    for (const { b, staleness, weight } of scaled) {
      this.progress.applied++;
      this.note(b.slot, staleness, weight);
      this.taskTimes.add(b.slot, b.trainSeconds);
      const { slot, numSamples, trainLoss, trainSeconds, sentAt, receivedAt, stats } = b;
      window.updates.push({ slot, numSamples, trainLoss, trainSeconds, sentAt, receivedAt, staleness, weight, ...(stats ? { stats } : {}) });
    }
  }

  private async commit(window: Window): Promise<void> {
    const { progress, ctx } = this;
    progress.round++;
    const traffic = ctx.outbox.traffic();
    const record = await commitRound(ctx, this.global, {
      round: progress.round,
      startedAt: window.startedAt,
      updates: window.updates,
      mergeSeconds: window.mergeSeconds,
      bytesSent: traffic.sent - window.traffic.sent,
      bytesReceived: traffic.received - window.traffic.received,
      version: progress.version,
    });
    ctx.log(`aggregator: async: version ${progress.version}, ${progress.applied} updates applied, staleness mean ${(record.staleness ?? 0).toFixed(2)} max ${record.maxStaleness ?? 0}`);
  }

  private note(slot: number, staleness: number, weight: number): void {
    const s = this.stats.get(slot) ?? { updates: 0, stalenessSum: 0, weightSum: 0 };
    s.updates++;
    s.stalenessSum += staleness;
    s.weightSum += weight;
    this.stats.set(slot, s);
  }

  private newWindow(): Window {
    return { startedAt: secondsNow(), traffic: this.ctx.outbox.traffic(), updates: [], mergeSeconds: 0 };
  }

  private dispatchSlot(slot: number): void {
    const h = this.ctx.registry.bySlot(slot);
    if (h) this.dispatch(h);
  }

  /** Sends the trainer in `h` a task on the newest model, unless it holds one or the budget is spent. */
  private dispatch(h: SlotHolder<C>): void {
    const { ctx, rule, progress } = this;
    if (!h.conn || this.outstanding.has(h.slot) || this.dispatched >= this.budget) return;
    const seq = (this.seqs.get(h.slot) ?? 0) + 1;
    const assignment = rule.assign(h.slot, seq);
    // The evaluation window open now: the round (evaluation index) the task is sent in.
    const round = Math.floor(progress.applied / this.settings.evalEvery) + 1;
    const msg = taskMessage(ctx.config, ctx.job, rule.taskWeights(this.global, assignment), assignment, { round, seq, version: progress.version });
    if (ctx.outbox.send(h.conn, msg) === 0) return;
    this.seqs.set(h.slot, seq);
    this.outstanding.set(h.slot, { msg, assignment, sentAt: secondsNow() });
    this.dispatched++;
  }

  private next(timeoutS: number): Promise<Arrived> {
    if (this.cancelled) return Promise.reject(this.cancelled);
    const ready = this.queue.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise<Arrived>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = null;
        this.waiting = null;
        const away = this.ctx.config.federation.worldSize - this.ctx.registry.connected().length;
        reject(
          new FedsliceError(
            'FEDSLICE_ERR_ROUND_TIMEOUT',
            `async: no update arrived within roundTimeoutS=${timeoutS}s (${this.progress.applied} of ${this.budget} applied, ${away} trainers disconnected); check the trainers' logs`,
          ),
        );
      }, timeoutS * 1000);
      this.waiting = { timer, reject };
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        this.waiting = null;
        resolve(this.queue.shift()!);
      };
    });
  }
}
