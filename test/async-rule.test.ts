import { describe, expect, it } from 'vitest';
import { addScaledDeltas, asyncSettings, stalenessWeight } from '../core/aggregation/async-rule.ts';
import { ConfigError, parseExperiment } from '../core/config.ts';

describe('staleness weights', () => {
  it('constant, polynomial and hinge match their formulas', () => {
    expect(stalenessWeight({ fn: 'constant', a: 0.5, b: 4 }, 7)).toBe(1);
    expect(stalenessWeight({ fn: 'polynomial', a: 0.5, b: 4 }, 0)).toBe(1);
    expect(stalenessWeight({ fn: 'polynomial', a: 0.5, b: 4 }, 3)).toBeCloseTo(0.5, 12);
    expect(stalenessWeight({ fn: 'polynomial', a: 1, b: 4 }, 4)).toBeCloseTo(0.2, 12);
    expect(stalenessWeight({ fn: 'hinge', a: 0.5, b: 4 }, 4)).toBe(1);
    expect(stalenessWeight({ fn: 'hinge', a: 0.5, b: 4 }, 6)).toBeCloseTo(0.5, 12);
  });

  it('never increase with staleness', () => {
    for (const fn of ['constant', 'polynomial', 'hinge'] as const) {
      let prev = Infinity;
      for (let s = 0; s < 50; s++) {
        const w = stalenessWeight({ fn, a: 0.7, b: 3 }, s);
        expect(w).toBeLessThanOrEqual(prev);
        expect(w).toBeGreaterThan(0);
        prev = w;
      }
    }
  });
});

describe('addScaledDeltas', () => {
  it('adds each delta times its scale and leaves the inputs alone', () => {
    const g = [{ name: 'a', shape: [3], data: new Float32Array([1, 2, 3]) }];
    const d1 = [{ name: 'a', shape: [3], data: new Float32Array([1, 1, 1]) }];
    const d2 = [{ name: 'a', shape: [3], data: new Float32Array([0, 2, -4]) }];
    const out = addScaledDeltas(g, [{ delta: d1, scale: 0.5 }, { delta: d2, scale: 0.25 }]);
    expect([...out[0].data]).toEqual([1.5, 3, 2.5]);
    expect([...g[0].data]).toEqual([1, 2, 3]);
  });
});

describe('async config', () => {
  const base = { federation: { worldSize: 3, mode: 'async' } };
  it('fills defaults: FedAsync mixing 0.6, polynomial a=0.5, no buffer, an evaluation per worldSize updates', () => {
    expect(asyncSettings(parseExperiment(base).federation)).toEqual({ mixing: 0.6, staleness: { fn: 'polynomial', a: 0.5, b: 4 }, bufferSize: 1, evalEvery: 3 });
  });
  it('refuses async settings outside async mode, stragglers outside the world, swap in async mode', () => {
    expect(() => parseExperiment({ federation: { mode: 'fedavg', async: { mixing: 0.5 } } })).toThrow(/federation\.async: only applies to mode "async"/);
    expect(() => parseExperiment({ federation: { worldSize: 2, stragglers: [{ slot: 2, slowdown: 3 }] } })).toThrow(/federation\.stragglers\.0\.slot: is 2 but worldSize is 2/);
    expect(() => parseExperiment({ federation: { worldSize: 2, stragglers: [{ slot: 0, slowdown: 0.5 }] } })).toThrow(ConfigError);
    expect(() => parseExperiment({ federation: { mode: 'async', worldSize: 2, swap: true } })).toThrow(/swap and layerwiseSwap apply to slice mode only/);
    expect(() => parseExperiment({ federation: { mode: 'async', async: { staleness: { fn: 'linear' } } } })).toThrow(/federation\.async\.staleness\.fn/);
  });
});
