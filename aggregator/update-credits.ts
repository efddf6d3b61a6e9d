/**
 * Which trainers may send their update now. A trainer announces a ready update (a `ready` message);
 * at most UPDATE_CREDITS of them hold a grant at once, the rest wait in the order they announced.
 * A credit comes back when the holder's update has arrived (accepted, or refused), when the
 * holder goes away, or with the whole set when the round that owns it ends (the round timeout
 * ends a round whose holder hangs). So the aggregator receives a few whole updates at a time,
 * however many trainers finish together.
 */

/**
 * Grants at once. The sync loop frees a credit as an update is accepted, before it merges, so the
 * next trainer starts writing while the merge runs (its bytes wait in the sockets' buffers until
 * the merge ends) and the aggregator holds one update at a time. Full width, 8 fedavg trainers
 * (bench/memory.ts, bench/README.md): round 1's collection peaked at 1.82 GB this way against 2.03
 * with two credits freed after the merge, and 3.14 with no flow control.
 */
export const UPDATE_CREDITS = 1;

export class UpdateCredits {
  private readonly holders = new Set<number>();
  private readonly waiting: number[] = [];

  /**
   * `grant(slot)` tells the trainer in `slot` to send; it returns false when that is no longer
   * possible (the trainer left, its task is over), and the credit goes to the next one waiting.
   */
  constructor(
    private readonly grant: (slot: number) => boolean,
    private readonly limit = UPDATE_CREDITS,
  ) {}

  /** The trainer in `slot` has an update ready; a second announcement while it waits or holds is ignored. */
  ready(slot: number): void {
    if (this.holders.has(slot) || this.waiting.includes(slot)) return;
    this.waiting.push(slot);
    this.pass();
  }

  /** The update from `slot` arrived, or its trainer left: its credit (or its place in line) is free. */
  release(slot: number): void {
    this.holders.delete(slot);
    const i = this.waiting.indexOf(slot);
    if (i >= 0) this.waiting.splice(i, 1);
    this.pass();
  }

  /** Slots holding a grant, in the order granted. */
  granted(): number[] {
    return [...this.holders];
  }

  /** Slots waiting for a grant, in order. */
  queued(): number[] {
    return [...this.waiting];
  }

  private pass(): void {
    while (this.holders.size < this.limit && this.waiting.length > 0) {
      const slot = this.waiting.shift()!;
      if (this.grant(slot)) this.holders.add(slot);
    }
  }
}
