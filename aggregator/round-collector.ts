/**
 * Collects one round's updates as events arrive, and decides when the round is over:
 * every slot has reported; or nobody is still working and at least minTrainers reported;
 * or the round timed out (proceed with minTrainers, else fail with the reason).
 */
import { FedsliceError } from '../core/errors.ts';

export interface RoundOutcome<U> {
  updates: Map<number, U>;
  /** Slots that sent nothing usable. */
  missing: number[];
  timedOut: boolean;
}

export class RoundCollector<U> {
  readonly done: Promise<RoundOutcome<U>>;
  private readonly updates = new Map<number, U>();
  private readonly working = new Set<number>();
  private resolve!: (o: RoundOutcome<U>) => void;
  private reject!: (e: Error) => void;
  private timer: NodeJS.Timeout | null = null;
  private settled = false;

  constructor(
    readonly round: number,
    private readonly worldSize: number,
    private readonly minTrainers: number,
    private readonly timeoutS: number,
    private readonly describeMissing: (slots: number[]) => string,
  ) {
    this.done = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.timer = setTimeout(() => this.onTimeout(), timeoutS * 1000);
  }

  /** A task went out to the trainer in `slot`. */
  started(slot: number): void {
    if (!this.updates.has(slot)) this.working.add(slot);
  }

  /** The trainer in `slot` went away before it reported. */
  away(slot: number): void {
    this.working.delete(slot);
    this.check();
  }

  has(slot: number): boolean {
    return this.updates.has(slot);
  }

  /** Returns false (and keeps the first) for a second update from the same slot. */
  accept(slot: number, update: U): boolean {
    if (this.settled || this.updates.has(slot)) return false;
    this.updates.set(slot, update);
    this.working.delete(slot);
    this.check();
    return true;
  }

  cancel(reason: Error): void {
    this.finish(() => this.reject(reason));
  }

  private missing(): number[] {
    return Array.from({ length: this.worldSize }, (_, s) => s).filter((s) => !this.updates.has(s));
  }

  private check(): void {
    if (this.settled) return;
    const all = this.updates.size === this.worldSize;
    const enough = this.updates.size >= this.minTrainers;
    if (all || (this.working.size === 0 && enough)) {
      this.finish(() => this.resolve({ updates: this.updates, missing: this.missing(), timedOut: false }));
    }
  }

  private onTimeout(): void {
    if (this.settled) return;
    if (this.updates.size >= this.minTrainers) {
      this.finish(() => this.resolve({ updates: this.updates, missing: this.missing(), timedOut: true }));
      return;
    }
    const missing = this.missing();
    this.finish(() =>
      this.reject(
        new FedsliceError(
          'FEDSLICE_ERR_ROUND_TIMEOUT',
          `round ${this.round}: only ${this.updates.size} of ${this.worldSize} trainers sent updates within roundTimeoutS=${this.timeoutS}s and minTrainers is ${this.minTrainers}; missing: ${this.describeMissing(missing)}`,
        ),
      ),
    );
  }

  private finish(settle: () => void): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    settle();
  }
}
