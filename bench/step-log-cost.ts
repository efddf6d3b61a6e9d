/**
 * What the step log and the per-round figures cost training (they must stay under 2%).
 *
 *   node --import tsx bench/step-log-cost.ts [--width 0.125] [--steps 40] [--reps 3] [--meter-steps 200000]
 *
 * Two measurements in one run:
 * 1. The instrumentation alone: StepMeter driven through --meter-steps steps with the real clocks,
 *    reporting at every step (the worst case) into a msgpack encoder as the trainer's send would,
 *    giving microseconds per step. Divided by the median real training step measured in (2), this
 *    is the cost as a share of training, and it does not depend on the machine's load the way an
 *    A/B difference does.
 * 2. Real training (core/training/train.ts at --width, batch 32) with the step log off, every
 *    step, and at the automatic interval, interleaved --reps times; median seconds per step of
 *    each, and the ratio to "off" (noisy on a shared machine: a difference under the spread of
 *    the "off" repetitions says nothing).
 */
import { parseArgs } from 'node:util';
import { Packr } from 'msgpackr';
import { initBackend } from '../core/compute/backend.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { range } from '../core/rng.ts';
import { percentile } from '../core/training/percentile.ts';
import { StepMeter, type StepReport } from '../core/training/step-meter.ts';
import { trainLocal, type TrainHyper } from '../core/training/train.ts';

const BATCH = 32;

function meterMicroseconds(steps: number): number {
  const packr = new Packr({ moreTypes: true });
  let bytes = 0;
  const onReport = (r: StepReport) => {
    bytes += packr.pack({ type: 'steps', job: 'bench', round: 1, points: [r] }).length;
  };
  const run = () => {
    const m = new StepMeter({ totalSteps: steps, learningRate: 1e-3, everySteps: 1, onReport });
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      m.startStep();
      m.batchReady();
      m.inStep();
      m.endStep(0, 2.3, BATCH);
    }
    m.finish();
    return ((performance.now() - t0) * 1000) / steps;
  };
  run(); // warm-up
  const us = Math.min(run(), run(), run());
  if (bytes === 0) throw new Error('no report was encoded');
  return us;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      width: { type: 'string', default: '0.125' },
      steps: { type: 'string', default: '40' },
      reps: { type: 'string', default: '3' },
      'meter-steps': { type: 'string', default: '200000' },
    },
  });
  const width = Number(values.width);
  const steps = Number(values.steps);
  const reps = Number(values.reps);
  const info = await initBackend('auto');
  const layers = alexnetLayers({ width, numClasses: 100 });
  const sets = generateSynthetic({ numClasses: 100, trainCount: BATCH * steps, testCount: 1, seed: 1 });
  const hyper: TrainHyper = { learningRate: 1e-4, weightDecay: 1e-4, batchSize: BATCH, epochs: 1, augment: true, maxStepsPerEpoch: steps };
  const variants = {
    off: undefined,
    'every step': 1,
    auto: 'auto',
  } as const;
  const train = async (every: 1 | 'auto' | undefined) => {
    let points = 0;
    const stepLog = every === undefined ? undefined : { ...(every === 1 ? { everySteps: 1 } : {}), onReport: () => points++ };
    const r = await trainLocal({ layers, weights: initialWeights(layers, 1), data: sets.train, indices: range(sets.train.count), hyper, seed: 1, round: 1, ...(stepLog ? { stepLog } : {}) });
    return { secondsPerStep: r.seconds / r.steps, points, p50: r.stats.stepP50Seconds };
  };
  await train(undefined); // warm-up
  const times = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
  const points = new Map<string, number>();
  const p50s: number[] = [];
  for (let i = 0; i < reps; i++) {
    for (const [name, every] of Object.entries(variants)) {
      const r = await train(every);
      times.get(name)!.push(r.secondsPerStep);
      points.set(name, r.points);
      p50s.push(r.p50);
    }
  }
  const us = meterMicroseconds(Number(values['meter-steps']));
  const stepSeconds = percentile(p50s, 50);
  console.log(`backend ${info.name} (${info.detail}), width ${width}, batch ${BATCH}, ${steps} steps x ${reps} reps; load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`\n1. instrumentation alone (report at every step, msgpack-encoded): ${us.toFixed(2)} us/step; median training step ${(stepSeconds * 1000).toFixed(1)} ms`);
  console.log(`   cost as a share of training: ${((us / 1e6 / stepSeconds) * 100).toFixed(4)} %`);
  const off = percentile(times.get('off')!, 50);
  console.log(`\n2. real training, median seconds per step (ratio to off; spread of off: ${(Math.min(...times.get('off')!) * 1000).toFixed(1)}-${(Math.max(...times.get('off')!) * 1000).toFixed(1)} ms)`);
  console.log('| step log | points per call | ms/step | ratio to off |\n|---|---:|---:|---:|');
  for (const name of Object.keys(variants)) {
    const t = percentile(times.get(name)!, 50);
    console.log(`| ${name} | ${points.get(name)} | ${(t * 1000).toFixed(1)} | ${(t / off).toFixed(4)} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
