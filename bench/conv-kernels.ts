/**
 * Each convolution kernel of a training step alone, at the shapes of the AlexNet at one width
 * (batch 32): the filter gradient, the input gradient and the forward convolution of every conv
 * layer, with a kernel lever on and off, interleaved (on, off, on, off, ...) so both see the same
 * load; best of --reps by process CPU time (all threads) and by wall clock. For deciding a lever
 * on a shared machine, where a whole step's time wanders more than one kernel's.
 *
 *   FEDSLICE_WASM_THREADS=2 node --import tsx bench/conv-kernels.ts [--width 0.125] [--reps 7] [--lever pixel-major]
 *
 * Levers: pixel-major (the filter gradient over [H, W, B, C] copies of x and dy,
 * core/compute/conv-grad-kernels.ts), threads (the conv kernels on the helper thread too), shared
 * (the threads take chunks of a job from a shared counter instead of fixed halves,
 * core/compute/wasm-helper-threads.ts).
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '../core/compute/tf.ts';
import { initBackend } from '../core/compute/backend.ts';
import { setFilterPixelMajor, setThreadedConvKernels } from '../core/compute/conv-grad-kernels.ts';
import { setThreadedConvForward } from '../core/compute/conv-forward-kernel.ts';
import { setSharedWork } from '../core/compute/wasm-helper-threads.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { Rng } from '../core/rng.ts';
import { TRAIN_BATCH } from './train-step.ts';

const LEVERS: Record<string, (on: boolean) => void> = {
  'pixel-major': setFilterPixelMajor,
  threads: (on) => {
    setThreadedConvKernels(on);
    setThreadedConvForward(on);
  },
  shared: setSharedWork,
};

interface Op {
  name: string;
  run(): void;
}

function random(shape: number[], rng: Rng): tf.Tensor {
  const a = new Float32Array(shape.reduce((s, d) => s * d, 1));
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  return tf.tensor(a, shape);
}

/** The three convolution kernels of every conv layer, each on seeded inputs kept across calls. */
function convOps(width: number): Op[] {
  const rng = new Rng(1);
  let size = 32;
  const ops: Op[] = [];
  for (const l of alexnetLayers({ width, numClasses: 100 })) {
    if (l.kind !== 'conv') continue;
    const xShape = [TRAIN_BATCH, size, size, l.inUnits];
    const filterShape = [l.kernel, l.kernel, l.inUnits, l.outUnits];
    const dyShape = [TRAIN_BATCH, size, size, l.outUnits];
    const x = random(xShape, rng);
    const filter = random(filterShape, rng);
    const dy = random(dyShape, rng);
    const attrs = { strides: [1, 1], pad: l.padding, dataFormat: 'NHWC', dilations: [1, 1] };
    const kernel = (name: string, inputs: tf.NamedTensorMap, extra: object) => () => {
      const out = tf.engine().runKernel(name, inputs, { ...attrs, ...extra } as unknown as tf.NamedAttrMap) as tf.Tensor;
      out.dispose();
    };
    ops.push({ name: `${l.name} filter gradient`, run: kernel('Conv2DBackpropFilter', { x, dy }, { filterShape }) });
    ops.push({ name: `${l.name} input gradient`, run: kernel('Conv2DBackpropInput', { dy, filter }, { inputShape: xShape }) });
    ops.push({ name: `${l.name} forward`, run: kernel('Conv2D', { x, filter }, {}) });
    if (l.poolAfter) size /= 2;
  }
  return ops;
}

function time(op: Op, calls: number): { cpu: number; wall: number } {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < calls; i++) op.run();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000 / calls, wall: (performance.now() - w0) / calls };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      width: { type: 'string', default: '0.125' },
      reps: { type: 'string', default: '7' },
      calls: { type: 'string', default: '3' },
      lever: { type: 'string', default: 'pixel-major' },
      only: { type: 'string', default: '' },
    },
  });
  const set = LEVERS[values.lever];
  if (!set) throw new Error(`--lever takes one of ${Object.keys(LEVERS).join(', ')}`);
  const info = await initBackend('wasm');
  const ops = convOps(Number(values.width)).filter((o) => o.name.includes(values.only));
  const reps = Number(values.reps);
  const calls = Number(values.calls);
  const best = new Map<string, { cpu: number; wall: number }>();
  const loadBefore = loadavg()[0];
  for (const op of ops) time(op, 1); // warm-up
  for (let r = 0; r < reps; r++) {
    for (const op of ops) {
      for (const on of [true, false]) {
        set(on);
        const t = time(op, calls);
        const key = `${op.name} ${on}`;
        const b = best.get(key);
        best.set(key, { cpu: Math.min(b?.cpu ?? Infinity, t.cpu), wall: Math.min(b?.wall ?? Infinity, t.wall) });
      }
      set(true);
    }
  }
  console.log(`lever ${values.lever}; backend ${info.name} (${info.detail}); best of ${reps} interleaved runs of ${calls} calls; load ${loadBefore.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`);
  console.log('ratio = off / on (above 1: the lever saves that much)\n');
  console.log('| kernel | CPU ms on | CPU ms off | ratio | wall ms on | wall ms off | ratio |\n|---|---:|---:|---:|---:|---:|---:|');
  const sum = { on: { cpu: 0, wall: 0 }, off: { cpu: 0, wall: 0 } };
  for (const op of ops) {
    const on = best.get(`${op.name} true`)!;
    const off = best.get(`${op.name} false`)!;
    sum.on.cpu += on.cpu; sum.on.wall += on.wall; sum.off.cpu += off.cpu; sum.off.wall += off.wall;
    console.log(`| ${op.name} | ${on.cpu.toFixed(2)} | ${off.cpu.toFixed(2)} | ${(off.cpu / on.cpu).toFixed(3)} | ${on.wall.toFixed(2)} | ${off.wall.toFixed(2)} | ${(off.wall / on.wall).toFixed(3)} |`);
  }
  console.log(`| all | ${sum.on.cpu.toFixed(2)} | ${sum.off.cpu.toFixed(2)} | ${(sum.off.cpu / sum.on.cpu).toFixed(3)} | ${sum.on.wall.toFixed(2)} | ${sum.off.wall.toFixed(2)} | ${(sum.off.wall / sum.on.wall).toFixed(3)} |`);
}

await main();
