/**
 * Liveness by ping: every interval each member is pinged; a member that has not answered the last
 * `maxMissed` pings in a row is dropped. Tolerating several misses matters because a role's event
 * loop can be busy for seconds at a time (one large evaluation or training batch on wasm): one
 * missed pong means a busy peer, a run of them a dead one.
 */
export interface HeartbeatOptions<M> {
  intervalMs: number;
  /** Pings in a row a member may leave unanswered; the next tick drops it. */
  maxMissed: number;
  members: () => Iterable<M>;
  ping: (m: M) => void;
  drop: (m: M) => void;
}

export const DEFAULT_PING_INTERVAL_MS = 5000;
export const DEFAULT_MAX_MISSED_PONGS = 3;

export class Heartbeat<M> {
  /** Unanswered pings per member; a member absent from the map has answered (or is new). */
  private readonly missed = new Map<M, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: HeartbeatOptions<M>) {
    if (!(o.maxMissed >= 1)) throw new RangeError(`maxMissed must be at least 1, got ${o.maxMissed}`);
    this.timer = setInterval(() => this.tick(), o.intervalMs);
    this.timer.unref();
  }

  /** The member answered: its count of missed pings starts again. */
  answered(m: M): void {
    this.missed.delete(m);
  }

  /** The member is gone for another reason: forget it. */
  forget(m: M): void {
    this.missed.delete(m);
  }

  stop(): void {
    clearInterval(this.timer);
    this.missed.clear();
  }

  private tick(): void {
    const present = new Set(this.o.members());
    for (const m of this.missed.keys()) if (!present.has(m)) this.missed.delete(m);
    for (const m of present) {
      const missed = this.missed.get(m) ?? 0;
      if (missed >= this.o.maxMissed) {
        this.missed.delete(m);
        this.o.drop(m);
        continue;
      }
      this.missed.set(m, missed + 1);
      this.o.ping(m);
    }
  }
}
