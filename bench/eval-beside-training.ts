/**
 * What an aggregator's evaluation beside training costs a trainer that has every core, at the
 * aggregator's own priority and at the lowest (the runner's choice when the trainers take every
 * core: runner/thread-budget.ts, core/role-priority.ts). This process trains width 1/8 on every
 * core (FEDSLICE_WASM_THREADS, default all), batch 32, as a W=1 round's trainer does; beside it a
 * child process evaluates width 1/8 on 1 wasm thread in a loop, as the aggregator evaluates the
 * previous round, started at nice 0, 10 or 19 (a fresh child each time: a process cannot
 * raise its priority again). Configurations interleaved (alone, nice 0, 10, 19, then again), best
 * of --reps each: the trainer's wall and CPU ms per step, and the images the child evaluated per
 * second meanwhile (how much of the evaluation still ran), with the load average before and after.
 *
 *   node --import tsx bench/eval-beside-training.ts [--steps 10] [--reps 4]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '../core/compute/backend.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { evaluate } from '../core/training/evaluate.ts';
import { lowerPriority } from '../core/role-priority.ts';
import { CLASSES, timeTrainSteps } from './train-step.ts';

const WIDTH = 0.125;
const EVAL_IMAGES = 128;

/** The child: evaluate in a loop at the nice value given, printing the images done after each pass. */
async function evaluator(nice: number): Promise<void> {
  lowerPriority(nice);
  await initBackend('wasm');
  const layers = alexnetLayers({ width: WIDTH, numClasses: CLASSES });
  const weights = initialWeights(layers, 1);
  const data = generateSynthetic({ numClasses: CLASSES, trainCount: 1, testCount: EVAL_IMAGES, seed: 2 }).test;
  process.stdout.write('ready\n');
  for (;;) {
    await evaluate({ layers, weights, data, batchSize: 64 });
    process.stdout.write(`${EVAL_IMAGES}\n`);
  }
}

interface Evaluator {
  child: ChildProcess;
  images: () => number;
}

function startEvaluator(nice: number): Promise<Evaluator> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--evaluator', String(nice)], {
    env: { ...process.env, FEDSLICE_WASM_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let images = 0;
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.split('\n')) {
        if (line === 'ready') resolve({ child, images: () => images });
        else if (line) images += Number(line);
      }
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { steps: { type: 'string', default: '10' }, reps: { type: 'string', default: '4' }, evaluator: { type: 'string' } } });
  if (values.evaluator !== undefined) return evaluator(Number(values.evaluator));
  const [steps, reps] = [Number(values.steps), Number(values.reps)];
  if (!(steps >= 1 && reps >= 1)) throw new Error('--steps and --reps take positive integers');
  const info = await initBackend('wasm');
  const load0 = loadavg()[0];
  await timeTrainSteps(WIDTH, 2); // warm-up
  const configs = ['alone', 'evaluation at nice 0', 'evaluation at nice 10', 'evaluation at nice 19'] as const;
  const best = new Map(configs.map((c) => [c, { wallMs: Infinity, cpuMs: Infinity, imagesPerS: 0 }]));
  for (let r = 0; r < reps; r++) {
    for (const c of configs) {
      const ev = c === 'alone' ? null : await startEvaluator(Number(c.split(' ').pop()));
      const before = ev?.images() ?? 0;
      const t0 = performance.now();
      const t = await timeTrainSteps(WIDTH, steps);
      const imagesPerS = ev ? ((ev.images() - before) * 1000) / (performance.now() - t0) : 0;
      ev?.child.kill();
      const b = best.get(c)!;
      if (t.wallMs < b.wallMs) Object.assign(b, { wallMs: t.wallMs, imagesPerS });
      b.cpuMs = Math.min(b.cpuMs, t.cpuMs);
    }
  }
  const alone = best.get('alone')!;
  console.log(`trainer: width ${WIDTH}, batch 32, wasm ${info.detail}; evaluation beside it: 1 wasm thread, ${EVAL_IMAGES} images a pass; best of ${reps} interleaved runs of ${steps} steps; load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`);
  console.log('\n| configuration | trainer wall ms/step | / alone | trainer CPU ms/step | evaluated images/s meanwhile |\n|---|---:|---:|---:|---:|');
  for (const [c, b] of best) console.log(`| ${c} | ${b.wallMs.toFixed(1)} | ${(b.wallMs / alone.wallMs).toFixed(3)} | ${b.cpuMs.toFixed(1)} | ${c === 'alone' ? '-' : b.imagesPerS.toFixed(0)} |`);
}

await main();
