/**
 * The aggregator's asynchronous mode: every trainer always holds a task on the newest model; an
 * update is applied as soon as it arrives (or every bufferSize updates), weighted by its
 * staleness, and the trainer gets the new model at once. The run applies rounds x worldSize
 * updates, as many local trainings as `rounds` synchronous rounds, and evaluates every evalEvery
 * updates; each evaluation is recorded as a round with the model version.
 */
import type { WebSocket } from 'ws';
import type { Experiment } from '../core/config.ts';
import { taskHyperOf } from '../core/config.ts';
import type { AggregationRule } from '../core/aggregation/rules.ts';
import { addScaledDeltas, asyncSettings, stalenessWeight, type AsyncSettings } from '../core/aggregation/async-rule.ts';
import { FedsliceError } from '../core/errors.ts';
import type { Weights } from '../core/model/tensor.ts';
import { checkUpdateContent } from '../core/wire/checks.ts';
import type { AggregatorToTrainer, MessageOf } from '../core/wire/schema.ts';
import type { SlotHolder, TrainerRegistry } from './registry.ts';
import type { TaskTimes } from './task-times.ts';
import type { AsyncCounts } from '../core/results/summary.ts';

/** Where an async run stands; restored from the last checkpoint on --resume. */
export interface AsyncProgress {
  version: number;
  applied: number;
  round: number;
  samplesSeen: number;
}

export interface AppliedUpdate {
  slot: number;
  version: number;
  staleness: number;
  weight: number;
  numSamples: number;
  trainLoss: number;
  trainSeconds: number;
  /** Seconds between the task leaving and its update arriving, beyond the training itself. */
  overheadSeconds: number;
}

/** What one evaluation window saw: the updates applied since the previous evaluation. */
export interface AsyncWindow {
  round: number;
  version: number;
  applied: number;
  samplesSeen: number;
  updates: AppliedUpdate[];
  mergeSeconds: number;
  seconds: number;
}

export interface AsyncLoopOptions {
  config: Experiment;
  rule: AggregationRule;
  job: string;
  registry: TrainerRegistry<WebSocket>;
  send: (conn: WebSocket, msg: AggregatorToTrainer) => number;
  log: (line: string) => void;
  /** Where each applied update's training time is noted. */
  taskTimes: TaskTimes;
  /** Evaluates `global`, checkpoints it and records the window; resolves when it is committed. */
  commit: (global: Weights, w: AsyncWindow) => Promise<void>;
}

interface Outstanding {
  version: number;
  sentAt: number;
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
}

interface SlotStats {
  updates: number;
  stalenessSum: number;
  weightSum: number;
}

const now = () => performance.now() / 1000;

export class AsyncLoop {
  readonly settings: AsyncSettings;
  private readonly budget: number;
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly taskCount = new Map<number, number>();
  private readonly queue: Arrived[] = [];
  private wake: (() => void) | null = null;
  /** The pending wait for an update: its timer and how to fail it. */
  private waiting: { timer: NodeJS.Timeout; reject: (e: Error) => void } | null = null;
  private cancelled: Error | null = null;
  private dispatched: number;
  private started = false;
  private readonly stats = new Map<number, SlotStats>();
  private readonly counts = { received: 0, refused: 0, lost: 0 };

  constructor(
    private readonly o: AsyncLoopOptions,
    private global: Weights,
    private progress: AsyncProgress,
  ) {
    const fed = o.config.federation;
    this.settings = asyncSettings(fed);
    this.budget = fed.rounds * fed.worldSize;
    this.dispatched = progress.applied;
  }

  onJoin(h: SlotHolder<WebSocket>): void {
    if (this.started) this.dispatch(h);
  }

  onLeave(h: SlotHolder<WebSocket>): void {
    if (this.outstanding.delete(h.slot)) {
      // Its task is lost; the budget gets it back, and the trainer a new one if it returns.
      this.dispatched--;
      this.counts.lost++;
    }
  }

  /** Checks an update; queues it and returns null, or returns why it was refused. */
  onUpdate(h: SlotHolder<WebSocket>, msg: MessageOf<'update'>): string | null {
    const reason = this.check(h, msg);
    if (reason) {
      this.counts.refused++;
      return reason;
    }
    const task = this.outstanding.get(h.slot)!;
    this.outstanding.delete(h.slot);
    this.counts.received++;
    this.queue.push({
      slot: h.slot,
      version: task.version,
      delta: msg.delta,
      numSamples: msg.numSamples,
      trainLoss: msg.metrics.trainLoss,
      trainSeconds: msg.metrics.trainSeconds,
      sentAt: task.sentAt,
      receivedAt: now(),
    });
    this.wake?.();
    return null;
  }

  /**
   * Runs until the budget of updates is applied. `idleTimeoutS` bounds the wait for the next
   * update; cancel() ends it.
   */
  async run(idleTimeoutS: number): Promise<Weights> {
    const { settings, o } = this;
    this.started = true;
    for (const h of o.registry.connected()) this.dispatch(h);
    o.log(`aggregator: async: ${this.budget - this.progress.applied} updates to apply (mixing ${settings.mixing}, staleness ${settings.staleness.fn}, buffer ${settings.bufferSize}, evaluation every ${settings.evalEvery})`);

    let window = this.newWindow();
    let buffer: Arrived[] = [];
    let windowStart = now();
    while (this.progress.applied + buffer.length < this.budget) {
      const u = await this.next(idleTimeoutS);
      buffer.push(u);
      const last = this.progress.applied + buffer.length === this.budget;
      if (buffer.length < settings.bufferSize && !last) {
        this.dispatchSlot(u.slot);
        continue;
      }
      const tm = now();
      const scaled = buffer.map((b) => {
        const staleness = this.progress.version - b.version;
        const weight = settings.mixing * stalenessWeight(settings.staleness, staleness);
        return { b, staleness, weight };
      });
      this.global = addScaledDeltas(
        this.global,
        scaled.map((s) => ({ delta: s.b.delta, scale: s.weight / buffer.length })),
      );
      this.progress.version++;
      window.mergeSeconds += now() - tm;
      for (const s of scaled) {
        this.progress.applied++;
        this.progress.samplesSeen += s.b.numSamples;
        this.note(s.b.slot, s.staleness, s.weight);
        o.taskTimes.add(s.b.slot, s.b.trainSeconds);
        window.updates.push({
          slot: s.b.slot,
          version: s.b.version,
          staleness: s.staleness,
          weight: s.weight,
          numSamples: s.b.numSamples,
          trainLoss: s.b.trainLoss,
          trainSeconds: s.b.trainSeconds,
          overheadSeconds: Math.max(0, s.b.receivedAt - s.b.sentAt - s.b.trainSeconds),
        });
      }
      for (const s of scaled) this.dispatchSlot(s.b.slot);
      buffer = [];

      const evalDue = Math.floor(this.progress.applied / settings.evalEvery) > Math.floor((this.progress.applied - scaled.length) / settings.evalEvery);
      if (evalDue || this.progress.applied === this.budget) {
        this.progress.round++;
        Object.assign(window, { round: this.progress.round, version: this.progress.version, applied: this.progress.applied, samplesSeen: this.progress.samplesSeen, seconds: now() - windowStart });
        await o.commit(this.global, window);
        window = this.newWindow();
        windowStart = now();
      }
    }
    return this.global;
  }

  /**
   * Counts of this process (a resumed run starts them afresh): updates received, refused and
   * lost with a departed trainer, the model version reached, and per trainer slot the updates
   * applied with their mean staleness and weight.
   */
  summary(): AsyncCounts {
    const out: AsyncCounts = {
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

  private note(slot: number, staleness: number, weight: number): void {
    const s = this.stats.get(slot) ?? { updates: 0, stalenessSum: 0, weightSum: 0 };
    s.updates++;
    s.stalenessSum += staleness;
    s.weightSum += weight;
    this.stats.set(slot, s);
  }

  private newWindow(): AsyncWindow {
    return { round: 0, version: 0, applied: 0, samplesSeen: 0, updates: [], mergeSeconds: 0, seconds: 0 };
  }

  private dispatchSlot(slot: number): void {
    const h = this.o.registry.bySlot(slot);
    if (h) this.dispatch(h);
  }

  private dispatch(h: SlotHolder<WebSocket>): void {
    if (!h.conn || this.outstanding.has(h.slot) || this.dispatched >= this.budget) return;
    const { o } = this;
    const n = (this.taskCount.get(h.slot) ?? 0) + 1;
    const a = o.rule.assign(h.slot, n);
    const bytes = o.send(h.conn, {
      type: 'task',
      job: o.job,
      round: n,
      version: this.progress.version,
      rank: a.rank,
      worldSize: o.config.federation.worldSize,
      mode: 'async',
      weights: o.rule.taskWeights(this.global, a),
      hyper: taskHyperOf(o.config, h.slot),
    });
    if (bytes === 0) return;
    this.taskCount.set(h.slot, n);
    this.outstanding.set(h.slot, { version: this.progress.version, sentAt: now() });
    this.dispatched++;
  }

  private check(h: SlotHolder<WebSocket>, msg: MessageOf<'update'>): string | null {
    if (msg.job !== this.o.job) return `job ${msg.job} is not ${this.o.job}`;
    const task = this.outstanding.get(h.slot);
    if (!task) return `slot ${h.slot} holds no task (a duplicate or late update)`;
    if (msg.version !== task.version) return `version ${msg.version ?? '(none)'} is not the version ${task.version} this trainer was given`;
    if (msg.round !== this.taskCount.get(h.slot)) return `task ${msg.round} is not the task ${this.taskCount.get(h.slot)} this trainer holds`;
    return checkUpdateContent(msg, this.o.rule.expectedShapes(this.o.rule.assign(h.slot, msg.round)));
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

  private next(timeoutS: number): Promise<Arrived> {
    if (this.cancelled) return Promise.reject(this.cancelled);
    const ready = this.queue.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise<Arrived>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = null;
        this.waiting = null;
        const away = this.o.config.federation.worldSize - this.o.registry.connected().length;
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
