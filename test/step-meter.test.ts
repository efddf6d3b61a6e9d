/** Percentiles against hand-worked values, and the step meter's intervals and figures on a fake clock. */
import { describe, expect, it } from 'vitest';
import { percentile, percentileOfSorted } from '../core/training/percentile.ts';
import { parseExperiment } from '../core/config.ts';
import { runKey } from '../core/results/schema.ts';
import { StepMeter, autoEverySteps, type StepReport } from '../core/training/step-meter.ts';

describe('percentile (linear interpolation between closest ranks, as numpy)', () => {
  it('matches values worked out by hand', () => {
    // n = 5: rank h = 4 p / 100; P95 at h = 3.8 is 40 + 0.8 x (50 - 40)
    const v = [40, 15, 50, 35, 20];
    expect(percentile(v, 50)).toBe(35);
    expect(percentile(v, 95)).toBeCloseTo(48, 12);
    expect(percentile(v, 99)).toBeCloseTo(49.6, 12);
    expect(percentile(v, 0)).toBe(15);
    expect(percentile(v, 100)).toBe(50);
    expect(percentile(v, 25)).toBe(20);
    expect(v).toEqual([40, 15, 50, 35, 20]); // input untouched
  });

  it('1..100: P50 50.5, P95 95.05, P99 99.01', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(v, 50)).toBeCloseTo(50.5, 12);
    expect(percentile(v, 95)).toBeCloseTo(95.05, 12);
    expect(percentile(v, 99)).toBeCloseTo(99.01, 12);
  });

  it('one value is every percentile; none is NaN; p outside 0..100 is refused', () => {
    expect(percentile([7], 99)).toBe(7);
    expect(percentileOfSorted([], 50)).toBeNaN();
    expect(() => percentile([1, 2], 101)).toThrow(/outside 0..100/);
    expect(() => percentile([1, 2], Number.NaN)).toThrow(/outside 0..100/);
  });
});

/** A clock the test moves by hand. */
function fakeClock() {
  let t = 1000;
  return { clock: { now: () => t, wall: () => 1_700_000_000_000 + t }, advance: (ms: number) => (t += ms) };
}

describe('StepMeter', () => {
  it('reports every N steps and at the last one: mean loss over the interval, samples/s, learning rate', () => {
    const { clock, advance } = fakeClock();
    const reports: StepReport[] = [];
    const m = new StepMeter({ totalSteps: 10, learningRate: 1e-3, everySteps: 4, onReport: (r) => reports.push(r), clock });
    for (let s = 0; s < 10; s++) {
      m.startStep();
      advance(10); // filling the batch
      m.batchReady();
      m.inStep();
      advance(90);
      m.endStep(s < 5 ? 0 : 1, s + 1, s === 9 ? 8 : 32); // loss 1..10, last batch partial
    }
    expect(reports.map((r) => [r.step, r.epoch, r.intervalSteps, r.samples])).toEqual([
      [4, 0, 4, 128],
      [8, 1, 4, 128],
      [10, 1, 2, 40],
    ]);
    expect(reports[0].loss).toBeCloseTo((1 + 2 + 3 + 4) / 4, 12);
    expect(reports[2].loss).toBeCloseTo((9 * 32 + 10 * 8) / 40, 12);
    expect(reports[0].samplesPerSecond).toBeCloseTo(128 / 0.4, 9);
    expect(reports[2].samplesPerSecond).toBeCloseTo(40 / 0.2, 9);
    expect(reports.every((r) => r.learningRate === 1e-3)).toBe(true);
    expect(reports[0].time).toBe(1_700_000_000_000 + 1400);
  });

  it('latency percentiles come from the per-step times; data share from the batch-filling time', () => {
    const { clock, advance } = fakeClock();
    const m = new StepMeter({ totalSteps: 5, learningRate: 1, everySteps: 0, clock });
    const stepMs = [40, 15, 50, 35, 20];
    for (const ms of stepMs) {
      m.startStep();
      advance(5);
      m.batchReady();
      advance(ms - 5);
      m.endStep(0, 1, 1);
    }
    const s = m.finish();
    expect(s.steps).toBe(5);
    expect(s.stepP50Seconds).toBeCloseTo(0.035, 12);
    expect(s.stepP95Seconds).toBeCloseTo(0.048, 12);
    expect(s.stepP99Seconds).toBeCloseTo(0.0496, 12);
    expect(s.dataLoadShare).toBeCloseTo(25 / 160, 12);
    expect(s.peakRssBytes).toBeGreaterThan(1e6);
    expect(s.tensorCount).toBeGreaterThanOrEqual(0);
  });

  it('without a step log it never calls back', () => {
    const { clock, advance } = fakeClock();
    let calls = 0;
    const m = new StepMeter({ totalSteps: 3, learningRate: 1, everySteps: 0, onReport: () => calls++, clock });
    for (let s = 0; s < 3; s++) {
      m.startStep();
      advance(1);
      m.endStep(0, 1, 1);
    }
    expect(calls).toBe(0);
  });

  it('the automatic interval gives about 30 points per call, at least every step', () => {
    expect(autoEverySteps(10)).toBe(1);
    expect(autoEverySteps(469)).toBe(16); // a CIFAR-100 epoch at W=2 (25,000 images, batch 32)
    expect(Math.ceil(4689 / autoEverySteps(4689))).toBeGreaterThanOrEqual(24);
  });
});

describe('the log section of the config', () => {
  it('defaults to the automatic interval, refuses a non-positive one by name, and leaves the run key alone', () => {
    expect(parseExperiment({}).log).toEqual({});
    expect(parseExperiment({ log: { everySteps: 5 } }).log.everySteps).toBe(5);
    expect(() => parseExperiment({ log: { everySteps: 0 } }, 'x.json')).toThrow(/x\.json: invalid config: log\.everySteps: /);
    expect(() => parseExperiment({ log: { every: 5 } })).toThrow(/log: /);
    expect(runKey(parseExperiment({ log: { everySteps: 5 } }))).toBe(runKey(parseExperiment({})));
  });
});
