// Heartbeat alone, on fake timers: a member is dropped only after several unanswered pings in a
// row; any answer starts its count again.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat } from '../metaserver/heartbeat.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function setup(maxMissed: number) {
  const members = new Set(['busy', 'dead']);
  const pings: string[] = [];
  const dropped: string[] = [];
  const hb = new Heartbeat<string>({
    intervalMs: 100,
    maxMissed,
    members: () => members,
    ping: (m) => pings.push(m),
    drop: (m) => {
      dropped.push(m);
      members.delete(m);
    },
  });
  return { hb, members, pings, dropped };
}

describe('Heartbeat', () => {
  it('drops a silent member on the tick after its third unanswered ping, and keeps one that answers late', () => {
    const { hb, pings, dropped } = setup(3);
    vi.advanceTimersByTime(300); // three pings each, none answered yet
    expect(pings.filter((m) => m === 'dead')).toHaveLength(3);
    expect(dropped).toEqual([]);
    hb.answered('busy'); // a busy event loop answers all its pings at once
    vi.advanceTimersByTime(100);
    expect(dropped).toEqual(['dead']);
    vi.advanceTimersByTime(200);
    expect(dropped).toEqual(['dead']);
    hb.stop();
  });

  it('with maxMissed 1 a single unanswered ping drops the member (the old rule)', () => {
    const { hb, dropped } = setup(1);
    vi.advanceTimersByTime(100);
    expect(dropped).toEqual([]);
    hb.answered('busy');
    vi.advanceTimersByTime(100);
    expect(dropped).toEqual(['dead']);
    hb.stop();
  });

  it('a member that left and came back starts with a clean count', () => {
    const { hb, members, dropped } = setup(2);
    vi.advanceTimersByTime(200); // 'busy' and 'dead' each missed 2
    members.delete('busy');
    hb.forget('busy');
    members.add('busy');
    hb.answered('dead');
    vi.advanceTimersByTime(100);
    expect(dropped).toEqual([]);
    vi.advanceTimersByTime(200);
    expect(dropped.sort()).toEqual(['busy', 'dead']);
    hb.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses a tolerance below one', () => {
    expect(() => new Heartbeat({ intervalMs: 100, maxMissed: 0, members: () => [], ping: () => {}, drop: () => {} })).toThrow(/maxMissed must be at least 1/);
  });
});
