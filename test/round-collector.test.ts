// RoundCollector alone, on fake timers: when a round is over, proceeds or fails (milliseconds, no sleeps).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoundCollector, type RoundOutcome } from '../aggregator/round-collector.ts';

const describeMissing = (slots: number[]) => slots.map((s) => `slot ${s}`).join(', ');

/** A collector for `worldSize` slots with a 10 s timeout, and what its promise settled to so far. */
function collector(worldSize: number, minTrainers: number) {
  const c = new RoundCollector<string>(3, worldSize, minTrainers, 10, describeMissing);
  const state: { outcome?: RoundOutcome<string>; error?: Error } = {};
  c.done.then(
    (o) => (state.outcome = o),
    (e: Error) => (state.error = e),
  );
  return { c, state };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('RoundCollector', () => {
  it('ends the round as soon as every slot reported, and leaves no timer behind', async () => {
    const { c, state } = collector(3, 3);
    for (const s of [0, 1, 2]) c.started(s);
    expect(c.accept(1, 'b')).toBe(true);
    expect(c.accept(0, 'a')).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(state.outcome).toBeUndefined();
    expect(c.accept(2, 'c')).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(state.outcome).toMatchObject({ missing: [], timedOut: false });
    expect([...state.outcome!.updates.entries()]).toEqual([[1, 'b'], [0, 'a'], [2, 'c']]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps the first of two updates from one slot', () => {
    const { c } = collector(2, 2);
    c.started(0);
    expect(c.accept(0, 'first')).toBe(true);
    expect(c.has(0)).toBe(true);
    expect(c.accept(0, 'second')).toBe(false);
  });

  it('at the timeout, proceeds with minTrainers updates and names the missing slots', async () => {
    const { c, state } = collector(3, 2);
    for (const s of [0, 1, 2]) c.started(s);
    c.accept(0, 'a');
    c.accept(2, 'c');
    await vi.advanceTimersByTimeAsync(9_999);
    expect(state.outcome).toBeUndefined(); // slot 1 is still working
    await vi.advanceTimersByTimeAsync(1);
    expect(state.outcome).toMatchObject({ missing: [1], timedOut: true });
    expect([...state.outcome!.updates.keys()]).toEqual([0, 2]);
  });

  it('at the timeout, below minTrainers, fails with one line naming who is missing', async () => {
    const { c, state } = collector(3, 2);
    for (const s of [0, 1, 2]) c.started(s);
    c.accept(1, 'b');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(state.error).toMatchObject({ code: 'FEDSLICE_ERR_ROUND_TIMEOUT' });
    expect(state.error!.message).toBe('round 3: only 1 of 3 trainers sent updates within roundTimeoutS=10s and minTrainers is 2; missing: slot 0, slot 2');
    expect(c.accept(0, 'late')).toBe(false);
  });

  it('does not wait for a trainer that left once minTrainers reported', async () => {
    const { c, state } = collector(3, 2);
    for (const s of [0, 1, 2]) c.started(s);
    c.accept(0, 'a');
    c.accept(1, 'b');
    c.away(2);
    await vi.advanceTimersByTimeAsync(0);
    expect(state.outcome).toMatchObject({ missing: [2], timedOut: false });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('waits for the timeout when the trainers still working cannot make minTrainers', async () => {
    const { c, state } = collector(3, 3);
    for (const s of [0, 1, 2]) c.started(s);
    c.accept(0, 'a');
    c.away(1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(state.outcome ?? state.error).toBeUndefined();
    c.started(1); // came back and got its task again
    c.accept(1, 'b');
    c.accept(2, 'c');
    await vi.advanceTimersByTimeAsync(0);
    expect(state.outcome).toMatchObject({ missing: [], timedOut: false });
  });

  it('cancel fails the round with the reason and clears its timer', async () => {
    const { c, state } = collector(2, 1);
    c.cancel(new Error('interrupted by SIGINT'));
    await vi.advanceTimersByTimeAsync(0);
    expect(state.error?.message).toBe('interrupted by SIGINT');
    expect(vi.getTimerCount()).toBe(0);
  });
});
