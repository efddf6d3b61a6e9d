/**
 * Training and inference throughput (images/s) of the AlexNet at several widths on the chosen
 * backend, against the same model in PyTorch where Debian's python3-torch is installed, and the
 * pure-JS cpu backend against wasm + conv-gradient kernels at width 1/8.
 *
 *   node --import tsx bench/train-throughput.ts [--widths 0.125,0.25,1] [--steps N] [--backend auto] [--threads auto]
 *
 * Each width is timed on fedslice and then at once on PyTorch, so both see about the same load;
 * the load average is printed with the table. --threads sets FEDSLICE_WASM_THREADS for this run.
 * The PyTorch side (bench/torch_throughput.py, /usr/bin/python3 or $FEDSLICE_PYTHON) runs our
 * trainer's recipe from bench/torch_recipe.py, augmentation and loss read-back included.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '../core/compute/tf.ts';
import { initBackend } from '../core/compute/backend.ts';
import { registerConvGradKernels, unregisterConvGradKernels } from '../core/compute/conv-grad-kernels.ts';
import type { BackendName } from '../core/config.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { forward, paramTensors } from '../core/model/network.ts';
import { Rng } from '../core/rng.ts';
import { trainLocal } from '../core/training/train.ts';
import { benchTrainArgs, CLASSES, TRAIN_BATCH, timeTrainSteps } from './train-step.ts';

const INFER_BATCH = 100;
const PYTHON = process.env.FEDSLICE_PYTHON ?? '/usr/bin/python3';

interface Rates {
  train: number;
  infer: number;
}

/** Full width is ~1 image/s on wasm: time fewer steps there. */
function stepsFor(width: number, steps: number): number {
  return width >= 1 ? Math.max(1, Math.round(steps / 5)) : steps;
}

async function trainRate(width: number, steps: number): Promise<number> {
  return (TRAIN_BATCH * 1000) / (await timeTrainSteps(width, steps)).wallMs;
}

/** Images/s of a single training step (setup included), for backends too slow to warm up. */
async function oneStepRate(width: number, batchSize: number): Promise<number> {
  return (await trainLocal(benchTrainArgs(width, 1, batchSize))).samplesPerSecond;
}

async function inferRate(width: number, steps: number): Promise<number> {
  const layers = alexnetLayers({ width, numClasses: CLASSES });
  const params = paramTensors(initialWeights(layers, 1));
  const rng = new Rng(2);
  const data = new Float32Array(INFER_BATCH * 32 * 32 * 3).map(() => rng.normal());
  const x = tf.tensor4d(data, [INFER_BATCH, 32, 32, 3]);
  const once = async () => {
    const y = forward(layers, params, x, { dropout: null });
    await y.data();
    y.dispose();
  };
  await once();
  const start = performance.now();
  for (let i = 0; i < steps; i++) await once();
  const seconds = (performance.now() - start) / 1000;
  tf.dispose([x, ...params.values()]);
  return (steps * INFER_BATCH) / seconds;
}

/** What the PyTorch side ran on, for the table's header. */
let torchSetup = '';

function torchRates(widths: number[], steps: number): Map<number, Rates> | string {
  if (!torchAvailable()) return 'PyTorch not found (install Debian python3-torch to compare); skipping the comparison';
  const script = fileURLToPath(new URL('./torch_throughput.py', import.meta.url));
  const r = spawnSync(
    PYTHON,
    [script, '--widths', widths.join(','), '--steps', String(steps), '--full-steps', String(stepsFor(1, steps)), '--threads', '2', '--classes', String(CLASSES)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) return `the PyTorch bench failed: ${r.stderr.trim().split('\n').pop()}`;
  const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Rates & { width: number; threads: number; blas: string });
  torchSetup = `PyTorch on ${rows[0]?.threads} threads, BLAS ${rows[0]?.blas}`;
  return new Map(rows.map((row) => [row.width, { train: row.train, infer: row.infer }]));
}

let torchProbe: boolean | undefined;
function torchAvailable(): boolean {
  torchProbe ??= spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  return torchProbe;
}

const fmt = (v: number | undefined, digits = 1) => (v === undefined ? '-' : v.toFixed(digits));
const pad = (s: string, n: number) => s.padStart(n);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      widths: { type: 'string', default: '0.125,0.25,1' },
      steps: { type: 'string', default: '10' },
      backend: { type: 'string', default: 'auto' },
      threads: { type: 'string', default: 'auto' },
      'no-baseline': { type: 'boolean', default: false },
    },
  });
  process.env.FEDSLICE_WASM_THREADS = values.threads;
  const widths = values.widths.split(',').map(Number);
  const steps = Number(values.steps);
  if (widths.some((w) => !(w > 0 && w <= 1)) || !(steps >= 1)) {
    throw new Error('--widths takes numbers in (0, 1] such as 0.125,0.25,1 and --steps a positive integer');
  }
  const info = await initBackend(values.backend as BackendName);
  const loadBefore = loadavg()[0];
  const ours = new Map<number, Rates>();
  const torchRows = new Map<number, Rates>();
  let torch: Map<number, Rates> | string = torchRows;
  for (const w of widths) {
    const n = stepsFor(w, steps);
    ours.set(w, { train: await trainRate(w, n), infer: await inferRate(w, n) });
    const t = torchRates([w], steps);
    if (typeof t === 'string') torch = t;
    else if (typeof torch !== 'string') torchRows.set(w, t.get(w)!);
    process.stderr.write(`  width ${w}: done\n`);
  }
  const loadAfter = loadavg()[0];

  console.log(`\nimages/s, train batch ${TRAIN_BATCH} (Adam, dropout, augment), inference batch ${INFER_BATCH}; ${CLASSES} classes`);
  console.log(`fedslice backend: ${info.name} (${info.detail}), tfjs ${info.tfjsVersion}; ${torchSetup || 'no PyTorch'}; load average ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}`);
  if (typeof torch === 'string') console.log(torch);
  console.log(['width', 'train', 'infer', 'torch train', 'torch infer', 'train ratio', 'infer ratio'].map((h) => pad(h, 12)).join(''));
  for (const w of widths) {
    const o = ours.get(w)!;
    const t = typeof torch === 'string' ? undefined : torch.get(w);
    const cells = [String(w), fmt(o.train), fmt(o.infer), fmt(t?.train), fmt(t?.infer), fmt(t && o.train / t.train, 3), fmt(t && o.infer / t.infer, 3)];
    console.log(cells.map((c) => pad(c, 12)).join(''));
  }

  if (!values['no-baseline'] && info.name === 'wasm') {
    const w = 0.125;
    const wasm = ours.get(w)?.train ?? (await trainRate(w, stepsFor(w, steps)));
    await initBackend('cpu');
    // the cpu backend's own filter gradient is ~10 s per image here: one batch of 8 is enough to time it
    const cpuOwn = await oneStepRate(w, 8);
    registerConvGradKernels('cpu');
    const cpuOurs = await trainRate(w, 2);
    unregisterConvGradKernels('cpu');
    console.log(`\nbaseline, train at width ${w} (images/s): cpu backend with its own conv gradients ${fmt(cpuOwn, 3)} (one batch of 8); ` +
      `cpu with the conv-gradient kernels ${fmt(cpuOurs, 2)}; wasm with them ${fmt(wasm, 1)}: ${fmt(wasm / cpuOwn, 0)}x and ${fmt(wasm / cpuOurs, 1)}x`);
  }
}

await main();
