/**
 * What a training call measures, declared once: the step-log point a trainer reports every
 * `log.everySteps` steps, and its latency and memory figures for the round. The wire validates
 * them with these schemas and the results store records the inferred types.
 */
import { z } from 'zod';

const seconds = z.number().finite().min(0);
const count = z.int().min(0);

/** One point of the step log, as the trainer reports it. */
export const StepReportSchema = z.object({
  /** Steps done in this training call (1-based): the last step of the interval. */
  step: z.int().min(1),
  /** Epoch of that step within the training call (0-based). */
  epoch: count,
  /** Mean training loss over the interval's samples. */
  loss: z.number().finite(),
  /** Steps and samples in the interval. */
  intervalSteps: z.int().min(1),
  samples: count,
  samplesPerSecond: z.number().finite().min(0),
  learningRate: z.number().finite().min(0),
  /** Wall clock at the end of the interval, ms since the epoch (the trainer's clock). */
  time: z.number().finite(),
});
export type StepReport = z.output<typeof StepReportSchema>;

/** Latency and memory of one training call (one trainer, one round). */
export const TrainerRoundStatsSchema = z.object({
  steps: count,
  /** Step latency percentiles (linear interpolation between ranks) over this call's steps. */
  stepP50Seconds: seconds,
  stepP95Seconds: seconds,
  stepP99Seconds: seconds,
  /** Share of the call's time spent filling batches (reading, augmenting, normalising). */
  dataLoadShare: z.number().min(0).max(1),
  /** The trainer process's peak resident set size so far (the kernel's high-water mark). */
  peakRssBytes: count,
  /** Highest tfjs tensor bytes and count seen, sampled inside steps (gradients alive). */
  tensorBytes: count,
  tensorCount: count,
  /** Bytes on the GPU where the backend reports them (webgl); null elsewhere. */
  gpuBytes: count.nullable(),
  /** The trainer's compute threads (null: the backend picks them); missing from older trainers. */
  threads: z.int().min(1).nullable().optional(),
});
export type TrainerRoundStats = z.output<typeof TrainerRoundStatsSchema>;
