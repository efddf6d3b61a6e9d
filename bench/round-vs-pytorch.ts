/**
 * One federated round against the same recipe in PyTorch, in one invocation. Our side is a
 * one-run sweep through the real processes (the runner's metaserver, an aggregator and one
 * trainer, each its own process, the trainer on every core the budget gives it): W=1, width 1/8,
 * one epoch of Adam (batch 32, no augmentation) over half the synthetic set's training images
 * (5,000), then the evaluation on half its test images (1,000). The PyTorch side
 * (bench/torch_round.py, /usr/bin/python3 or $FEDSLICE_PYTHON with torch, on every core) trains
 * and evaluates the same model on as many images in one process; it is skipped with one line
 * where torch is absent. The ratio is PyTorch's seconds over ours for the round (training,
 * transfer, merge and evaluation); the sweep's wall time, start-up included, is printed beside it.
 *
 *   node --import tsx bench/round-vs-pytorch.ts              # the measurement (quiet machine)
 *   node --import tsx bench/round-vs-pytorch.ts --fraction 0.05   # a quick check that it runs
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readManifest } from '../core/data/manifest.ts';
import { SYNTHETIC_DEFAULTS, writeSynthetic } from '../core/data/synthetic.ts';
import { ResultsStore } from '../core/results/store.ts';
import { FEDSLICE_BIN } from '../runner/processes.ts';

const PYTHON = process.env.FEDSLICE_PYTHON ?? '/usr/bin/python3';
const TORCH_SCRIPT = fileURLToPath(new URL('./torch_round.py', import.meta.url));
const WIDTH = 0.125;
const EVAL_BATCH = 500;
const LEARNING_RATE = 1e-3;

const { values } = parseArgs({ options: { fraction: { type: 'string', default: '0.5' }, dir: { type: 'string', default: 'data/synthetic' } } });
const fraction = Number(values.fraction);
if (!(fraction > 0 && fraction <= 1)) throw new Error(`--fraction takes a number in (0, 1], got '${values.fraction}'`);
const dir = resolve(values.dir!);
const manifest = readManifest(dir) ?? (writeSynthetic(dir, SYNTHETIC_DEFAULTS), readManifest(dir)!);
const trainImages = Math.round(fraction * manifest.trainCount);
const testImages = Math.round(fraction * manifest.testCount);

/** Our round: a one-run sweep; its round-1 record and the sweep's wall time. */
function ours() {
  const work = mkdtempSync(join(tmpdir(), 'fedslice-round-'));
  const sweepFile = join(work, 'round.json');
  writeFileSync(
    sweepFile,
    JSON.stringify({
      name: 'round-vs-pytorch',
      base: {
        dataset: { name: 'synthetic', dir, fraction },
        model: { width: WIDTH, numClasses: manifest.numClasses },
        federation: { worldSize: 1, mode: 'slice', rounds: 1, roundTimeoutS: 1200 },
        train: { learningRate: LEARNING_RATE, epochs: 1, batchSize: 32, augment: false },
        eval: { batchSize: EVAL_BATCH },
      },
      grid: { seed: [1] },
    }),
  );
  const results = join(work, 'results');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [FEDSLICE_BIN, 'runner', 'sweep', '--config', sweepFile, '--results', results], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, CI: 'true' } });
  const wallSeconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`the sweep exited with ${r.status}; see ${results}/logs`);
  const store = new ResultsStore(results);
  const round = store.readRounds().records.find((x) => x.round === 1);
  const run = store.readRuns().records.find((x) => x.status === 'completed');
  if (!round || !run) throw new Error(`no completed round 1 in ${results}`);
  return { round, wallSeconds, aggregatorThreads: run.environment.threads ?? null, trainerThreads: round.trainers?.[0]?.threads ?? null };
}

interface TorchRound {
  threads: number;
  trainSeconds: number;
  evalSeconds: number;
  accuracy: number;
}

function torch(): TorchRound | string {
  if (spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) return `PyTorch side skipped: ${PYTHON} cannot import torch (set FEDSLICE_PYTHON to a python3 with torch)`;
  const args = [TORCH_SCRIPT, '--dir', dir, '--train', String(trainImages), '--test', String(testImages), '--width', String(WIDTH), '--classes', String(manifest.numClasses), '--eval-batch', String(EVAL_BATCH), '--lr', String(LEARNING_RATE), '--threads', String(availableParallelism())];
  const r = spawnSync(PYTHON, args, { encoding: 'utf8' });
  if (r.status !== 0) return `PyTorch side failed: ${r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`}`;
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TorchRound;
}

const loadBefore = loadavg()[0];
const o = ours();
const t = torch();
const loadAfter = loadavg()[0];

const s = (x: number) => `${x.toFixed(1)} s`;
console.log(`\none W=1 round, width ${WIDTH}, ${trainImages} training images (1 epoch, batch 32, Adam, no augmentation), evaluation on ${testImages}; ${availableParallelism()} cores; load average ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}`);
console.log(`  fedslice (trainer ${o.trainerThreads ?? '?'} threads, aggregator ${o.aggregatorThreads ?? '?'}): round ${s(o.round.roundSeconds)} = train ${s(o.round.trainSeconds)} + transfer ${s(o.round.transferSeconds)} + merge ${s(o.round.mergeSeconds)} + eval ${s(o.round.evalSeconds)} (plus the rest); test accuracy ${o.round.testAccuracy.toFixed(3)}; sweep wall time ${s(o.wallSeconds)} (start-up and round 0 included)`);
if (typeof t === 'string') console.log(`  ${t}`);
else {
  const total = t.trainSeconds + t.evalSeconds;
  console.log(`  PyTorch (${t.threads} threads, one process): ${s(total)} = train ${s(t.trainSeconds)} + eval ${s(t.evalSeconds)}; test accuracy ${t.accuracy.toFixed(3)}`);
  console.log(`  ratio (PyTorch seconds / ours, round): ${(total / o.round.roundSeconds).toFixed(2)}x; training alone ${(t.trainSeconds / o.round.trainSeconds).toFixed(2)}x`);
}
