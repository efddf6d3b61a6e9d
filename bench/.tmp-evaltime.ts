import { initBackend } from '../core/compute/backend.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { evaluate } from '../core/training/evaluate.ts';
await initBackend('auto');
const layers = alexnetLayers({ width: 1, numClasses: 100 });
const w = initialWeights(layers, 1);
const { test } = generateSynthetic({ numClasses: 100, trainCount: 10, testCount: 64, seed: 0 });
for (const batch of [64, 32, 64, 32, 64, 32]) {
  const t0 = performance.now();
  await evaluate({ layers, weights: w, data: test, batchSize: batch });
  const c = process.cpuUsage();
  console.log(batch, ((performance.now() - t0) / 1000).toFixed(1), 's', (c.user / 1e6).toFixed(1));
}
