/**
 * What each wasm kernel lever is worth to a training step: the real training path
 * (core/training/train.ts, batch 32, Adam, dropout, augmentation) with every lever on, and with
 * each lever in turn set back to tfjs's own kernel, interleaved (all-on, lever 1 off, lever 2 off,
 * ..., then again) so each configuration sees the same load; best of --reps per configuration.
 * Prints ms/step by wall clock and by process CPU time (all threads; with one wasm thread it is
 * the steadier figure on a shared machine), each as a ratio to all-on, and the load average
 * before and after.
 *
 *   node --import tsx bench/kernel-levers.ts [--widths 0.125,0.25] [--steps 5] [--reps 3]
 *   FEDSLICE_WASM_THREADS=2 node --import tsx bench/kernel-levers.ts --only conv   # the levers whose name has 'conv'
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { initBackend } from '../core/compute/backend.ts';
import { setSimdAdam } from '../core/training/adam.ts';
import { setFilterPixelMajor, setSimdConvFilter, setSimdConvInput, setThreadedConvKernels } from '../core/compute/conv-grad-kernels.ts';
import { registerWasmConv2D, unregisterWasmConv2D } from '../core/compute/conv-forward-kernel.ts';
import { registerWasmMatMul, setSimdFusedMatMul, setSimdMatMul, unregisterWasmMatMul } from '../core/compute/matmul-kernel.ts';
import { registerWasmAdd, registerWasmMulSub, unregisterWasmAdd, unregisterWasmMulSub } from '../core/compute/binary-kernel.ts';
import { registerWasmRelu, unregisterWasmRelu } from '../core/compute/relu-kernel.ts';
import { setSimdReluGrad } from '../core/compute/relu-grad-kernel.ts';
import { registerWasmSum, unregisterWasmSum } from '../core/compute/sum-kernel.ts';
import { registerWasmMaxPool, unregisterWasmMaxPool } from '../core/compute/maxpool-kernel.ts';
import { registerWasmMaxPoolGrad, setSimdMaxPoolGrad, unregisterWasmMaxPoolGrad } from '../core/compute/maxpool-grad-kernel.ts';
import { setSharedWork } from '../core/compute/wasm-helper-threads.ts';
import { TRAIN_BATCH, timeTrainSteps, type StepTiming } from './train-step.ts';

interface Lever {
  name: string;
  off(): void;
  on(): void;
}

const LEVERS: Lever[] = [
  { name: 'SIMD conv filter gradient (core/compute/simd-conv-filter-module.ts; off: transposed conv on XNNPACK)', off: () => setSimdConvFilter(false), on: () => setSimdConvFilter(true) },
  { name: 'filter gradient over [H, W, B, C] copies of x and dy (core/compute/conv-grad-kernels.ts; off: over NHWC, FEDSLICE_FILTER_PIXEL_MAJOR=off)', off: () => setFilterPixelMajor(false), on: () => setFilterPixelMajor(true) },
  { name: 'SIMD conv input gradient (core/compute/simd-conv-input-module.ts; off: XNNPACK conv)', off: () => setSimdConvInput(false), on: () => setSimdConvInput(true) },
  { name: 'SIMD forward conv (core/compute/conv-forward-kernel.ts; off: XNNPACK conv)', off: unregisterWasmConv2D, on: registerWasmConv2D },
  { name: 'conv gradients on helper threads too (core/compute/wasm-helper-threads.ts; off: main thread alone)', off: () => setThreadedConvKernels(false), on: () => setThreadedConvKernels(true) },
  { name: 'helper-thread work in chunks from a shared counter (core/compute/wasm-helper-threads.ts; off: fixed equal parts, FEDSLICE_SHARED_WORK=off)', off: () => setSharedWork(false), on: () => setSharedWork(true) },
  { name: 'SIMD ReLU gradient (core/compute/relu-grad-kernel.ts; off: Step, Cast, Multiply)', off: () => setSimdReluGrad(false), on: () => setSimdReluGrad(true) },
  { name: 'SIMD Relu (core/compute/relu-kernel.ts; off: wasm own)', off: unregisterWasmRelu, on: registerWasmRelu },
  { name: 'SIMD Add (core/compute/binary-kernel.ts; off: wasm own)', off: unregisterWasmAdd, on: registerWasmAdd },
  { name: 'SIMD Multiply and Sub on the calling thread (core/compute/binary-kernel.ts; off: XNNPACK on the pthread pool, FEDSLICE_SIMD_MUL_SUB=off)', off: unregisterWasmMulSub, on: registerWasmMulSub },
  { name: 'SIMD Adam (core/compute/simd-adam-module.ts; off: the JS loop)', off: () => setSimdAdam(false), on: () => setSimdAdam(true) },
  { name: 'bias-gradient Sum (core/compute/sum-kernel.ts; off: wasm own)', off: unregisterWasmSum, on: registerWasmSum },
  { name: 'SIMD matMul products (core/compute/matmul-kernel.ts; off: XNNPACK)', off: () => setSimdMatMul(false), on: () => setSimdMatMul(true) },
  { name: 'SIMD _FusedMatMul (core/compute/matmul-kernel.ts; off: XNNPACK on the pthread pool, FEDSLICE_SIMD_FUSED_MATMUL=off)', off: () => setSimdFusedMatMul(false), on: () => setSimdFusedMatMul(true) },
  { name: 'matMul kernel (core/compute/matmul-kernel.ts)', off: unregisterWasmMatMul, on: registerWasmMatMul },
  { name: 'SIMD MaxPoolGrad (core/compute/simd-maxpool-module.ts; off: the JS loop)', off: () => setSimdMaxPoolGrad(false), on: () => setSimdMaxPoolGrad(true) },
  { name: 'SIMD MaxPool on the calling thread (core/compute/maxpool-kernel.ts; off: XNNPACK on the pthread pool, FEDSLICE_SIMD_MAXPOOL=off)', off: unregisterWasmMaxPool, on: registerWasmMaxPool },
  { name: 'MaxPoolGrad kernel (core/compute/maxpool-grad-kernel.ts; off: wasm own)', off: unregisterWasmMaxPoolGrad, on: registerWasmMaxPoolGrad },
];

/** The round's levers (issue 14, part 5) together: what they are worth as a set. */
const ROUND_LEVERS = ['SIMD forward conv', 'SIMD matMul products', 'SIMD ReLU gradient', 'SIMD Relu', 'SIMD Add'];
const roundLevers = () => LEVERS.filter((l) => ROUND_LEVERS.some((n) => l.name.startsWith(n)));
LEVERS.push({
  name: `the round's levers together (${ROUND_LEVERS.join(', ')})`,
  off: () => roundLevers().forEach((l) => l.off()),
  on: () => roundLevers().forEach((l) => l.on()),
});

/** The margin levers (issue 14, parts 4 and 5, third pass) together. */
const MARGIN_LEVERS = ['filter gradient over [H, W, B, C]', 'SIMD MaxPool on', 'SIMD _FusedMatMul'];
const marginLevers = () => LEVERS.filter((l) => MARGIN_LEVERS.some((n) => l.name.startsWith(n)));
LEVERS.push({
  name: `the margin levers together (${MARGIN_LEVERS.join(', ')})`,
  off: () => marginLevers().forEach((l) => l.off()),
  on: () => marginLevers().forEach((l) => l.on()),
});

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      widths: { type: 'string', default: '0.125,0.25' },
      steps: { type: 'string', default: '5' },
      reps: { type: 'string', default: '3' },
      only: { type: 'string', default: '' },
    },
  });
  const widths = values.widths.split(',').map(Number);
  const steps = Number(values.steps);
  const reps = Number(values.reps);
  if (widths.some((w) => !(w > 0 && w <= 1)) || !(steps >= 1) || !(reps >= 1)) {
    throw new Error('--widths takes numbers in (0, 1] such as 0.125,0.25; --steps and --reps positive integers');
  }
  const info = await initBackend('wasm');
  const configs = [{ name: 'all levers on', lever: null as Lever | null }, ...LEVERS.filter((l) => l.name.includes(values.only)).map((l) => ({ name: `without ${l.name}`, lever: l }))];
  const loadBefore = loadavg()[0];
  const best = new Map<string, StepTiming>();
  for (const width of widths) {
    for (let r = 0; r < reps; r++) {
      for (const c of configs) {
        c.lever?.off();
        const t = await timeTrainSteps(width, steps);
        c.lever?.on();
        const key = `${width} ${c.name}`;
        const b = best.get(key);
        best.set(key, { wallMs: Math.min(b?.wallMs ?? Infinity, t.wallMs), cpuMs: Math.min(b?.cpuMs ?? Infinity, t.cpuMs) });
      }
    }
    process.stderr.write(`  width ${width}: done\n`);
  }
  const loadAfter = loadavg()[0];
  console.log(`\nms per training step (batch ${TRAIN_BATCH}), best of ${reps} interleaved runs of ${steps} steps; backend ${info.name} (${info.detail}); load average ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}`);
  console.log('ratio = this configuration / all levers on (above 1: the lever saves that much)\n');
  console.log('| width | configuration | wall ms/step | ratio | CPU ms/step | ratio |\n|---|---|---:|---:|---:|---:|');
  for (const width of widths) {
    const base = best.get(`${width} all levers on`)!;
    for (const c of configs) {
      const t = best.get(`${width} ${c.name}`)!;
      console.log(`| ${width} | ${c.name} | ${t.wallMs.toFixed(1)} | ${(t.wallMs / base.wallMs).toFixed(3)} | ${t.cpuMs.toFixed(1)} | ${(t.cpuMs / base.cpuMs).toFixed(3)} |`);
    }
  }
}

await main();
