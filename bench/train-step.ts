/**
 * The training run the throughput benches time: the real training path (core/training/train.ts:
 * Adam, dropout, augmentation, batch 32) of the AlexNet at one width over a synthetic set, one
 * warm-up step and then `steps` timed steps. Shared by train-throughput.ts and kernel-levers.ts so
 * both time the same thing.
 */
import { generateSynthetic } from '../core/data/synthetic.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { range } from '../core/rng.ts';
import { trainLocal, type TrainArgs } from '../core/training/train.ts';

export const TRAIN_BATCH = 32;
export const CLASSES = 100;

export interface StepTiming {
  /** Wall-clock ms per timed step. */
  wallMs: number;
  /** Process CPU ms (all threads) per timed step. */
  cpuMs: number;
}

/** The arguments of a training run of `steps` steps (after nothing: the caller decides what to time). */
export function benchTrainArgs(width: number, steps: number, batchSize = TRAIN_BATCH): TrainArgs {
  const layers = alexnetLayers({ width, numClasses: CLASSES });
  const sets = generateSynthetic({ numClasses: CLASSES, trainCount: batchSize * steps, testCount: 1, seed: 1 });
  return {
    layers,
    weights: initialWeights(layers, 1),
    data: sets.train,
    indices: range(sets.train.count),
    hyper: { learningRate: 1e-4, weightDecay: 1e-4, batchSize, epochs: 1, augment: true, maxStepsPerEpoch: steps },
    seed: 1,
    round: 1,
  };
}

/** Train `steps` steps after one warm-up step at `width`; time per timed step. */
export async function timeTrainSteps(width: number, steps: number): Promise<StepTiming> {
  const marks: Array<{ wall: number; cpu: NodeJS.CpuUsage }> = [];
  await trainLocal({
    ...benchTrainArgs(width, steps + 1),
    onProgress: () => marks.push({ wall: performance.now(), cpu: process.cpuUsage() }),
  });
  // the first mark is the end of the warm-up step
  const first = marks[0];
  const last = marks[marks.length - 1];
  const cpuMicros = last.cpu.user + last.cpu.system - (first.cpu.user + first.cpu.system);
  return { wallMs: (last.wall - first.wall) / steps, cpuMs: cpuMicros / 1000 / steps };
}
