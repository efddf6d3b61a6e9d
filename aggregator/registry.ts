/**
 * Which trainer holds which slot. A slot is a trainer's fixed place in the job: its data shard
 * and its starting rank. A trainer that reconnects with the same id gets its slot back.
 */
import { FedsliceError } from '../core/errors.ts';

export interface SlotHolder<C> {
  id: string;
  slot: number;
  /** The live connection, or null while the trainer is away. */
  conn: C | null;
}

export class TrainerRegistry<C> {
  private readonly byId = new Map<string, SlotHolder<C>>();
  private fullWaiters: (() => void)[] = [];

  constructor(readonly worldSize: number) {}

  /**
   * Gives `id` its slot: the one it held before, else the one it asks for if free, else the
   * lowest free one. Refuses when every slot belongs to another trainer.
   */
  join(id: string, conn: C, wantedSlot?: number): { holder: SlotHolder<C>; replaced: C | null; rejoined: boolean } {
    const known = this.byId.get(id);
    if (known) {
      const replaced = known.conn;
      known.conn = conn;
      this.notifyIfFull();
      return { holder: known, replaced, rejoined: true };
    }
    const taken = new Set([...this.byId.values()].map((h) => h.slot));
    let slot: number | undefined;
    if (wantedSlot !== undefined) {
      if (wantedSlot < 0 || wantedSlot >= this.worldSize) {
        throw new FedsliceError('FEDSLICE_ERR_SHARD', `shard ${wantedSlot} is out of range: this job has shards 0..${this.worldSize - 1}`);
      }
      if (taken.has(wantedSlot)) {
        throw new FedsliceError('FEDSLICE_ERR_SHARD', `shard ${wantedSlot} is already held by another trainer; pick a free one or leave --shard out`);
      }
      slot = wantedSlot;
    } else {
      for (let s = 0; s < this.worldSize && slot === undefined; s++) if (!taken.has(s)) slot = s;
    }
    if (slot === undefined) {
      throw new FedsliceError('FEDSLICE_ERR_FULL', `the job already has its ${this.worldSize} trainers; a trainer can only rejoin with an id it used before`);
    }
    const holder = { id, slot, conn };
    this.byId.set(id, holder);
    this.notifyIfFull();
    return { holder, replaced: null, rejoined: false };
  }

  /** Resolves once every slot has a connected trainer (at once if they all have). */
  whenFull(): Promise<void> {
    if (this.connected().length >= this.worldSize) return Promise.resolve();
    return new Promise((resolve) => this.fullWaiters.push(resolve));
  }

  private notifyIfFull(): void {
    if (this.fullWaiters.length === 0 || this.connected().length < this.worldSize) return;
    const waiters = this.fullWaiters;
    this.fullWaiters = [];
    for (const w of waiters) w();
  }

  /** Marks the trainer on `conn` as away; it keeps its slot. */
  leave(conn: C): SlotHolder<C> | null {
    for (const h of this.byId.values()) {
      if (h.conn === conn) {
        h.conn = null;
        return h;
      }
    }
    return null;
  }

  holderOf(conn: C): SlotHolder<C> | null {
    for (const h of this.byId.values()) if (h.conn === conn) return h;
    return null;
  }

  bySlot(slot: number): SlotHolder<C> | null {
    for (const h of this.byId.values()) if (h.slot === slot) return h;
    return null;
  }

  connected(): SlotHolder<C>[] {
    return [...this.byId.values()].filter((h) => h.conn !== null).sort((a, b) => a.slot - b.slot);
  }

  /** Restores slots known from a checkpoint, so trainers get their slots back after --resume. */
  restore(slots: Record<string, number>): void {
    for (const [id, slot] of Object.entries(slots)) {
      if (!this.byId.has(id) && slot >= 0 && slot < this.worldSize) this.byId.set(id, { id, slot, conn: null });
    }
  }

  slots(): Record<string, number> {
    return Object.fromEntries([...this.byId.values()].map((h) => [h.id, h.slot]));
  }
}
