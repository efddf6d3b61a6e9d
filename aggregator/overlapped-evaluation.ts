/**
 * Sync mode's evaluation beside training: round r, once merged and checkpointed, is queued here;
 * its evaluation starts when round r+1's tasks are out, runs while the trainers train, and appends
 * round r's record when it ends. At most one round is checkpointed and unrecorded at a time: the
 * loop drains round r's record before round r+1's checkpoint replaces round r's, so a crash at any
 * moment leaves one checkpoint whose round is either recorded or evaluated again on resume.
 *
 * Overlap is measured, not assumed: the part of the evaluation that ran before the loop had to wait
 * for it (drain) overlapped the next round's training; the rest is counted in the round's seconds.
 */
import type { Weights } from '../core/model/tensor.ts';
import { markMemory } from '../core/compute/memory-probe.ts';
import type { RoundRecord } from '../core/results/types.ts';
import { evaluateAndRecord, type LoopContext } from './federation-loop.ts';
import { secondsNow, type Evaluation, type TrainedRound } from './round-record.ts';

interface Running {
  round: number;
  startedAt: number;
  /** When the loop began to wait for it (secondsNow); null while the next round still trains. */
  clock: { drainedAt: number | null };
  done: Promise<RoundRecord>;
}

export class OverlappedEvaluation<C> {
  private queued: { trained: TrainedRound; weights: Weights } | null = null;
  private running: Running | null = null;

  constructor(private readonly ctx: LoopContext<C>) {}

  /** Round `trained` is checkpointed with `weights`: evaluate it at the next start() or drain(). */
  queue(trained: TrainedRound, weights: Weights): void {
    if (this.queued || this.running) throw new Error(`round ${trained.round} queued for evaluation before round ${this.queued?.trained.round ?? this.running?.round} was recorded`);
    this.queued = { trained, weights };
  }

  /** Starts the queued evaluation: the loop calls it as soon as the next round's tasks are out. */
  start(): void {
    const q = this.queued;
    if (!q) return;
    this.queued = null;
    const startedAt = secondsNow();
    const clock: Running['clock'] = { drainedAt: null };
    const ctx: LoopContext<C> = {
      ...this.ctx,
      // Only what ran before the loop waited overlapped the next round's training.
      record: (trained: TrainedRound, ev: Evaluation) => this.ctx.record(trained, ev, (clock.drainedAt ?? secondsNow()) - startedAt),
    };
    const done = evaluateAndRecord(ctx, q.weights, q.trained).then((record) => {
      markMemory('aggregator', record.round, 'evaluated');
      return record;
    });
    // A failure is reported by drain() or settle(), never as an unhandled rejection meanwhile.
    done.catch(() => {});
    this.running = { round: q.trained.round, startedAt, clock, done };
  }

  /**
   * Waits until the round in flight is recorded (starting it if it is only queued: nothing is left
   * to overlap it with); resolves with the seconds waited. Rejects with the evaluation's failure.
   */
  async drain(): Promise<number> {
    const waitFrom = secondsNow();
    const startedHere = this.queued !== null;
    this.start();
    const r = this.running;
    if (!r) return 0;
    r.clock.drainedAt = startedHere ? r.startedAt : waitFrom;
    try {
      await r.done;
    } finally {
      this.running = null;
    }
    return secondsNow() - waitFrom;
  }

  /**
   * On the way out of a failed or interrupted loop: lets an evaluation already running append its
   * record, so a resume need not repeat it; a queued one stays checkpointed-but-unrecorded.
   */
  async settle(): Promise<void> {
    this.queued = null;
    const r = this.running;
    if (!r) return;
    r.clock.drainedAt ??= secondsNow();
    await r.done.catch((e: unknown) => this.ctx.log(`aggregator: round ${r.round}: evaluation failed on the way out: ${(e as Error).message}`));
    this.running = null;
  }
}
