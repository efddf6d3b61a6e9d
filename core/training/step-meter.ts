/**
 * What one local training measures besides its loss: per-step wall time (for latency
 * percentiles), time spent filling batches, the tfjs memory high-water mark, and every
 * `everySteps` steps an interval report (mean loss, samples/s) for the step log.
 *
 * It only reads clocks and counters: the loss it averages is the value the training loop already
 * reads back each step, so it adds no backend sync. tf.memory() is read once per interval, inside
 * a step (it reports counters the engine keeps, without touching the backend's data).
 */
import * as tf from '../compute/tf.ts';
import { percentileOfSorted } from './percentile.ts';
import { peakRssBytes } from '../results/environment.ts';
import type { StepReport, TrainerRoundStats } from './metrics-schema.ts';

export type { StepReport, TrainerRoundStats };

export interface StepMeterOptions {
  totalSteps: number;
  learningRate: number;
  /** Report every this many steps (and at the last step); 0 = no step reports. */
  everySteps: number;
  onReport?: (r: StepReport) => void;
  /** Milliseconds of a monotonic clock (performance.now) and of the wall clock (Date.now). */
  clock?: { now: () => number; wall: () => number };
}

const realClock = { now: () => performance.now(), wall: () => Date.now() };

export class StepMeter {
  private readonly stepSeconds: Float64Array;
  private steps = 0;
  private dataSeconds = 0;
  private readonly clock: { now: () => number; wall: () => number };
  private readonly started: number;
  private stepStarted = 0;
  private intervalStarted: number;
  private intervalLoss = 0;
  private intervalSamples = 0;
  private intervalSteps = 0;
  private tensorBytes = 0;
  private tensorCount = 0;
  private gpuBytes: number | null = null;

  constructor(private readonly o: StepMeterOptions) {
    this.clock = o.clock ?? realClock;
    this.started = this.clock.now();
    this.intervalStarted = this.started;
    this.stepSeconds = new Float64Array(o.totalSteps);
    this.sampleMemory();
  }

  startStep(): void {
    this.stepStarted = this.clock.now();
  }

  /** Called after the batch is filled: the time since startStep was data loading. */
  batchReady(): void {
    this.dataSeconds += (this.clock.now() - this.stepStarted) / 1000;
  }

  /**
   * Called inside the step while its activations and gradients are alive: samples tfjs memory on
   * the first step and on every reporting step, so the high-water mark includes them.
   */
  inStep(): void {
    if (this.steps === 0 || this.isReportStep(this.steps + 1)) this.sampleMemory();
  }

  private isReportStep(step: number): boolean {
    const every = this.o.everySteps;
    return step === this.o.totalSteps || (every > 0 && step % every === 0);
  }

  /** Called once the step's loss has been read back. */
  endStep(epoch: number, loss: number, samples: number): void {
    const now = this.clock.now();
    if (this.steps < this.stepSeconds.length) this.stepSeconds[this.steps] = (now - this.stepStarted) / 1000;
    this.steps++;
    this.intervalLoss += loss * samples;
    this.intervalSamples += samples;
    this.intervalSteps++;
    if (this.o.everySteps > 0 && this.isReportStep(this.steps)) this.report(epoch, now);
  }

  private report(epoch: number, now: number): void {
    const seconds = (now - this.intervalStarted) / 1000;
    this.o.onReport?.({
      step: this.steps,
      epoch,
      loss: this.intervalLoss / this.intervalSamples,
      intervalSteps: this.intervalSteps,
      samples: this.intervalSamples,
      samplesPerSecond: seconds > 0 ? this.intervalSamples / seconds : 0,
      learningRate: this.o.learningRate,
      time: this.clock.wall(),
    });
    this.intervalStarted = now;
    this.intervalLoss = 0;
    this.intervalSamples = 0;
    this.intervalSteps = 0;
  }

  private sampleMemory(): void {
    const m = tf.memory();
    this.tensorBytes = Math.max(this.tensorBytes, m.numBytes);
    this.tensorCount = Math.max(this.tensorCount, m.numTensors);
    // only the webgl backend adds this field to its memory report
    if ('numBytesInGPU' in m && typeof m.numBytesInGPU === 'number') this.gpuBytes = Math.max(this.gpuBytes ?? 0, m.numBytesInGPU);
  }

  /** The figures of the whole call; call once, after the last step. */
  finish(): TrainerRoundStats {
    this.sampleMemory();
    const sorted = this.stepSeconds.slice(0, Math.min(this.steps, this.stepSeconds.length)).sort();
    const total = (this.clock.now() - this.started) / 1000;
    return {
      steps: this.steps,
      stepP50Seconds: percentileOfSorted(sorted, 50),
      stepP95Seconds: percentileOfSorted(sorted, 95),
      stepP99Seconds: percentileOfSorted(sorted, 99),
      dataLoadShare: total > 0 ? this.dataSeconds / total : 0,
      peakRssBytes: peakRssBytes(),
      tensorBytes: this.tensorBytes,
      tensorCount: this.tensorCount,
      gpuBytes: this.gpuBytes,
    };
  }
}

/** Steps between step-log points when the config leaves it to us: about `points` per training call. */
export function autoEverySteps(totalSteps: number, points = 30): number {
  return Math.max(1, Math.round(totalSteps / points));
}
