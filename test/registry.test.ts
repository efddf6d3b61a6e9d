// TrainerRegistry alone: stable slots, reconnects, refusals and the wait for a full job.
import { describe, expect, it } from 'vitest';
import { TrainerRegistry } from '../aggregator/registry.ts';

describe('TrainerRegistry', () => {
  it('gives each new trainer the lowest free slot, or the shard it asks for', () => {
    const r = new TrainerRegistry<string>(3);
    expect(r.join('a', 'conn-a').holder.slot).toBe(0);
    expect(r.join('c', 'conn-c', 2).holder.slot).toBe(2);
    expect(r.join('b', 'conn-b').holder.slot).toBe(1);
    expect(r.connected().map((h) => h.id)).toEqual(['a', 'b', 'c']);
    expect(r.slots()).toEqual({ a: 0, c: 2, b: 1 });
  });

  it('refuses a shard out of range, a shard taken, and a trainer too many', () => {
    const r = new TrainerRegistry<string>(2);
    expect(() => r.join('x', 'c', 2)).toThrow(/shard 2 is out of range: this job has shards 0..1/);
    r.join('a', 'conn-a', 1);
    expect(() => r.join('b', 'conn-b', 1)).toThrow(/shard 1 is already held by another trainer/);
    r.join('b', 'conn-b');
    expect(() => r.join('c', 'conn-c')).toThrow(expect.objectContaining({ code: 'FEDSLICE_ERR_FULL' }));
  });

  it('keeps a departed trainer\'s slot and gives it back when the same id returns', () => {
    const r = new TrainerRegistry<string>(2);
    r.join('a', 'conn-a1');
    r.join('b', 'conn-b');
    expect(r.leave('conn-a1')).toMatchObject({ id: 'a', slot: 0, conn: null });
    expect(r.connected().map((h) => h.id)).toEqual(['b']);
    expect(r.bySlot(0)).toMatchObject({ id: 'a', conn: null });
    const back = r.join('a', 'conn-a2');
    expect(back).toMatchObject({ holder: { slot: 0, conn: 'conn-a2' }, replaced: null, rejoined: true });
    // a second connection with the same id replaces the first one
    expect(r.join('a', 'conn-a3')).toMatchObject({ replaced: 'conn-a2', rejoined: true });
    expect(r.holderOf('conn-a3')?.slot).toBe(0);
    expect(r.holderOf('conn-a2')).toBeNull();
  });

  it('restores slots from a checkpoint so trainers get their old ones after a restart', () => {
    const r = new TrainerRegistry<string>(3);
    r.restore({ a: 2, b: 0, bad: 7 });
    expect(r.connected()).toEqual([]);
    expect(r.join('a', 'conn-a').holder.slot).toBe(2);
    expect(r.join('new', 'conn-n').holder.slot).toBe(1);
    expect(r.join('b', 'conn-b')).toMatchObject({ holder: { slot: 0 }, rejoined: true });
  });

  it('whenFull resolves on the join that fills the last slot, and at once when already full', async () => {
    const r = new TrainerRegistry<string>(2);
    let full = 0;
    void r.whenFull().then(() => full++);
    r.join('a', 'conn-a');
    await Promise.resolve();
    expect(full).toBe(0);
    r.join('b', 'conn-b');
    await Promise.resolve();
    expect(full).toBe(1);
    await expect(r.whenFull()).resolves.toBeUndefined();
    // after a departure the job fills again when the trainer comes back
    r.leave('conn-b');
    void r.whenFull().then(() => full++);
    await Promise.resolve();
    expect(full).toBe(1);
    r.join('b', 'conn-b2');
    await Promise.resolve();
    expect(full).toBe(2);
  });
});
