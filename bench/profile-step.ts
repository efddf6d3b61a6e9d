/**
 * Where a training step's time goes: tf.profile over N steps of the real training path
 * (core/training/train.ts, batch 32, Adam, dropout, augmentation) after one warm-up call, with each
 * kernel's time summed by kernel name (and optionally by kernel and shape), its share of the
 * profiled wall time, and the time spent outside kernels (JS: batch filling, dropout masks,
 * tape bookkeeping, copies into the wasm heap).
 *
 *   node --import tsx bench/profile-step.ts [--width 0.125] [--steps 5] [--backend wasm] [--shapes] [--stock]
 *
 * --stock puts back wasm's own BatchMatMul and MaxPoolGrad and the JS Adam loop (the before of
 * core/compute/matmul-kernel.ts, core/compute/maxpool-grad-kernel.ts and core/compute/simd-adam-module.ts);
 * FEDSLICE_WASM_THREADS sets the threads.
 */
import { parseArgs } from 'node:util';
import * as tf from '../core/compute/tf.ts';
import { initBackend } from '../core/compute/backend.ts';
import type { BackendName } from '../core/config.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import { initialWeights } from '../core/model/init.ts';
import { setSimdAdam } from '../core/training/adam.ts';
import { unregisterWasmMatMul } from '../core/compute/matmul-kernel.ts';
import { unregisterWasmMaxPoolGrad } from '../core/compute/maxpool-grad-kernel.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { range } from '../core/rng.ts';
import { trainLocal, type TrainHyper } from '../core/training/train.ts';

const BATCH = 32;
const CLASSES = 100;

interface Row {
  key: string;
  calls: number;
  ms: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      width: { type: 'string', default: '0.125' },
      steps: { type: 'string', default: '5' },
      backend: { type: 'string', default: 'wasm' },
      shapes: { type: 'boolean', default: false },
      stock: { type: 'boolean', default: false },
    },
  });
  const width = Number(values.width);
  const steps = Number(values.steps);
  if (!(width > 0 && width <= 1) || !(steps >= 1)) throw new Error('--width takes a number in (0, 1] and --steps a positive integer');
  const info = await initBackend(values.backend as BackendName);
  if (values.stock) {
    unregisterWasmMatMul();
    unregisterWasmMaxPoolGrad();
    setSimdAdam(false);
  }
  const layers = alexnetLayers({ width, numClasses: CLASSES });
  const sets = generateSynthetic({ numClasses: CLASSES, trainCount: BATCH * steps, testCount: 1, seed: 1 });
  const run = (n: number) => {
    const hyper: TrainHyper = { learningRate: 1e-4, weightDecay: 1e-4, batchSize: BATCH, epochs: 1, augment: true, maxStepsPerEpoch: n };
    return trainLocal({ layers, weights: initialWeights(layers, 1), data: sets.train, indices: range(sets.train.count), hyper, seed: 1, round: 1 });
  };
  await run(1); // warm-up: kernel set-up, XNNPACK operator caches
  const start = performance.now();
  const profile = await tf.profile(async () => {
    await run(steps);
    return [];
  });
  const wallMs = performance.now() - start;

  const rows = new Map<string, Row>();
  for (const k of profile.kernels) {
    if (k.name.endsWith('__op')) continue; // a custom-gradient op's scope, its kernels are listed themselves
    const key = values.shapes ? `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(' ')}` : k.name;
    const row = rows.get(key) ?? { key, calls: 0, ms: 0 };
    row.calls++;
    row.ms += k.kernelTimeMs as number;
    rows.set(key, row);
  }
  const sorted = [...rows.values()].sort((a, b) => b.ms - a.ms);
  const kernelMs = sorted.reduce((s, r) => s + r.ms, 0);
  console.log(`per-kernel time of one training step, width ${width}, batch ${BATCH}, mean of ${steps} steps`);
  console.log(`backend ${info.name} (${info.detail}${values.stock ? ", wasm's own BatchMatMul and MaxPoolGrad, JS Adam loop" : ''}), tfjs ${info.tfjsVersion}; wall ${(wallMs / steps).toFixed(1)} ms/step = ${((BATCH * steps * 1000) / wallMs).toFixed(1)} images/s (profiling included)`);
  console.log(`\n| kernel | calls/step | ms/step | share of wall |\n|---|---:|---:|---:|`);
  const line = (key: string, calls: number, ms: number) =>
    console.log(`| ${key} | ${(calls / steps).toFixed(0)} | ${(ms / steps).toFixed(2)} | ${((100 * ms) / wallMs).toFixed(1)}% |`);
  for (const r of sorted) {
    if ((100 * r.ms) / wallMs < 0.3 && !values.shapes) continue;
    line(r.key, r.calls, r.ms);
  }
  const small = sorted.filter((r) => (100 * r.ms) / wallMs < 0.3 && !values.shapes);
  if (small.length) line(`${small.length} other kernels`, small.reduce((s, r) => s + r.calls, 0), small.reduce((s, r) => s + r.ms, 0));
  line('outside kernels (JS, batches, tape)', 0, wallMs - kernelMs);
}

await main();
