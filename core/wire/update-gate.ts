/**
 * The trainer's side of update flow control (the `ready` and `grant` messages of core/wire/schema.ts):
 * an update is announced with a small ready message and written only when the aggregator grants
 * it, so the aggregator receives a few whole updates at a time instead of every trainer's at once.
 * One gate per connection. An update still waiting is dropped when its ready is refused (its task
 * is over) or a new task arrives (the aggregator moved on without it).
 */
import type { MessageOf, TrainerToAggregator } from './schema.ts';
import type { OnWritten } from './socket.ts';

type Update = MessageOf<'update'>;

export class UpdateGate {
  private waiting: { msg: Update; onWritten?: OnWritten } | null = null;

  constructor(private readonly send: (m: TrainerToAggregator, onWritten?: OnWritten) => void) {}

  /** Announces `update`; it is written (and `onWritten` called) when its grant arrives. */
  offer(update: Update, onWritten?: OnWritten): void {
    this.waiting = { msg: update, ...(onWritten ? { onWritten } : {}) };
    const { job, round, version, seq, rank } = update;
    this.send({ type: 'ready', job, round, rank, ...(version !== undefined ? { version } : {}), ...(seq !== undefined ? { seq } : {}) });
  }

  /** Writes the update the grant names; false (nothing written) when no such update waits. */
  granted(grant: MessageOf<'grant'>): boolean {
    const w = this.waiting;
    if (!w || w.msg.round !== grant.round || w.msg.seq !== grant.seq) return false;
    this.waiting = null;
    this.send(w.msg, w.onWritten);
    return true;
  }

  /** The aggregator refused the ready of `round`'s update: it will never be granted. */
  refused(round: number): void {
    if (this.waiting?.msg.round === round) this.waiting = null;
  }

  /** A new task arrived: an update still waiting answers a task that is over. */
  drop(): void {
    this.waiting = null;
  }

  /** Whether an update waits for its grant. */
  holds(): boolean {
    return this.waiting !== null;
  }
}
