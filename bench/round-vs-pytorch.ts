/**
 * One federated round against the same recipe in PyTorch, in one invocation. Our side is a
 * one-run sweep through the real processes (the runner's metaserver, an aggregator and one
 * trainer, each its own process, the trainer on every core the thread budget gives it): W=1, width
 * 1/8, one epoch (batch 32, Adam, no augmentation) over half the synthetic set's training images
 * (5,000), then the evaluation on half its test images (1,000). The PyTorch side
 * (bench/torch_round.py with bench/torch_recipe.py, /usr/bin/python3 or $FEDSLICE_PYTHON, on every
 * core) trains and evaluates the same model with the same recipe on the very images our run uses
 * (the bench writes the run's subsets for it), evaluating in passes of the aggregator's batch, in
 * one process; it is skipped with one line where torch is absent. The table splits our sweep's wall time into its parts from the run's records;
 * the ratio is PyTorch's seconds over ours for the round (training, transfer, merge, evaluation).
 *
 *   node --import tsx bench/round-vs-pytorch.ts              # the measurement (quiet machine)
 *   node --import tsx bench/round-vs-pytorch.ts --fraction 0.05   # a quick check that it runs
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { aggregatorEvalBatch } from '../aggregator/run.ts';
import { parseExperiment, type Experiment } from '../core/config.ts';
import { loadForExperiment } from '../core/data/load.ts';
import { readManifest } from '../core/data/manifest.ts';
import { encodeRecords, TEST_FILE, TRAIN_FILE } from '../core/data/records.ts';
import { SYNTHETIC_DEFAULTS, writeSynthetic } from '../core/data/synthetic.ts';
import { ResultsStore } from '../core/results/store.ts';
import { FEDSLICE_BIN } from '../runner/processes.ts';

const PYTHON = process.env.FEDSLICE_PYTHON ?? '/usr/bin/python3';
const TORCH_SCRIPT = fileURLToPath(new URL('./torch_round.py', import.meta.url));

const { values } = parseArgs({ options: { fraction: { type: 'string', default: '0.5' }, dir: { type: 'string', default: 'data/synthetic' } } });
const fraction = Number(values.fraction);
if (!(fraction > 0 && fraction <= 1)) throw new Error(`--fraction takes a number in (0, 1], got '${values.fraction}'`);
const dir = resolve(values.dir!);
const manifest = readManifest(dir) ?? (writeSynthetic(dir, SYNTHETIC_DEFAULTS), readManifest(dir)!);

/** The one experiment both sides run. */
const experiment: Experiment = parseExperiment({
  name: 'round-vs-pytorch',
  dataset: { name: 'synthetic', dir, fraction },
  model: { width: 0.125, numClasses: manifest.numClasses },
  federation: { worldSize: 1, mode: 'slice', rounds: 1, roundTimeoutS: 1200 },
  train: { learningRate: 1e-3, epochs: 1, batchSize: 32, augment: false },
  eval: { batchSize: 500 },
  seed: 1,
});
const work = mkdtempSync(join(tmpdir(), 'fedslice-round-'));

/** Our round: a one-run sweep; its records and the sweep's wall time. */
function ours() {
  const sweepFile = join(work, 'round.json');
  writeFileSync(sweepFile, JSON.stringify({ name: experiment.name, base: experiment }));
  const results = join(work, 'results');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [FEDSLICE_BIN, 'runner', 'sweep', '--config', sweepFile, '--results', results], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, CI: 'true' } });
  const wallSeconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`the sweep exited with ${r.status}; see ${results}/logs`);
  const store = new ResultsStore(results);
  const rounds = store.readRounds().records;
  const round0 = rounds.find((x) => x.round === 0);
  const round = rounds.find((x) => x.round === 1);
  const run = store.readRuns().records.find((x) => x.status === 'completed');
  if (!round || !round0 || !run) throw new Error(`no completed round 1 in ${results}`);
  return { round, round0, run, wallSeconds, trainer: round.trainers?.[0] };
}

interface TorchRound {
  threads: number;
  blas: string;
  trainSeconds: number;
  evalSeconds: number;
  trainLoss: number;
  accuracy: number;
  wallSeconds: number;
}

/** PyTorch on the subsets our run uses, written to a folder of its own. */
function torch(): TorchRound | string {
  if (spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) return `PyTorch side skipped: ${PYTHON} cannot import torch (set FEDSLICE_PYTHON to a python3 with torch)`;
  const sets = loadForExperiment(experiment.dataset, experiment.seed);
  const data = join(work, 'torch-data');
  mkdirSync(data);
  writeFileSync(join(data, TRAIN_FILE), encodeRecords(sets.train));
  writeFileSync(join(data, TEST_FILE), encodeRecords(sets.test));
  const { train, model } = experiment;
  const args = [TORCH_SCRIPT, '--dir', data, '--width', String(model.width), '--classes', String(model.numClasses), '--eval-batch', String(aggregatorEvalBatch(experiment)),
    '--lr', String(train.learningRate), '--seed', String(experiment.seed), '--threads', String(availableParallelism()), ...(train.augment ? ['--augment'] : [])];
  const t0 = performance.now();
  const r = spawnSync(PYTHON, args, { encoding: 'utf8' });
  const wallSeconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) return `PyTorch side failed: ${r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`}`;
  return { ...(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Omit<TorchRound, 'wallSeconds'>), wallSeconds };
}

const loadBefore = loadavg()[0];
const o = ours();
const t = torch();
const loadAfter = loadavg()[0];

const { round, round0, run, trainer } = o;
const pt = typeof t === 'string' ? undefined : t;
const runWall = run.wallSeconds ?? 0;
const evalAfter = round.evalSeconds - (round.evalOverlapSeconds ?? 0);
const roundRest = round.roundSeconds - round.trainSeconds - round.transferSeconds - round.mergeSeconds - evalAfter;
const rows: [string, number | undefined, number | undefined][] = [
  ['sweep / python process, wall', o.wallSeconds, pt?.wallSeconds],
  ['  start-up and exit (processes, backend, data)', o.wallSeconds - runWall, pt && pt.wallSeconds - pt.trainSeconds - pt.evalSeconds],
  ['  run before round 1 (trainer joins, round 0)', runWall - round.roundSeconds, undefined],
  ['  round 1', round.roundSeconds, pt && pt.trainSeconds + pt.evalSeconds],
  ['    training', round.trainSeconds, pt?.trainSeconds],
  ['    transfer (task out, update back)', round.transferSeconds, undefined],
  ['    merge', round.mergeSeconds, undefined],
  ['    evaluation', evalAfter, pt?.evalSeconds],
  ['    rest (checkpoint, record)', roundRest, undefined],
  ['round 0 evaluation, while round 1 trained', round0.evalOverlapSeconds ?? 0, undefined],
];
const cell = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2)).padStart(16);
console.log(`\none W=1 round, width ${experiment.model.width}, ${run.config.dataset.fraction} of the synthetic set (1 epoch, batch 32, Adam ${experiment.train.learningRate}, augment ${experiment.train.augment}); ` +
  `${availableParallelism()} cores; load average ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}`);
console.log(`fedslice: trainer ${trainer?.threads ?? '?'} threads, aggregator ${run.environment.threads ?? '?'}; ${typeof t === 'string' ? t : `PyTorch: ${t.threads} threads, BLAS ${t.blas}`}`);
console.log(`${'seconds'.padEnd(60)}${'fedslice'.padStart(16)}${'PyTorch'.padStart(16)}`);
for (const [name, a, b] of rows) console.log(`${name.padEnd(60)}${cell(a)}${cell(b)}`);
console.log(`${'train loss / test accuracy'.padEnd(60)}${`${(round.trainLoss ?? NaN).toFixed(3)} / ${round.testAccuracy.toFixed(3)}`.padStart(16)}${pt ? `${pt.trainLoss.toFixed(3)} / ${pt.accuracy.toFixed(3)}`.padStart(16) : ''}`);
if (trainer) {
  console.log(`our training: ${trainer.steps} steps, median ${(trainer.stepP50Seconds * 1000).toFixed(0)} ms (p95 ${(trainer.stepP95Seconds * 1000).toFixed(0)}), ` +
    `${(100 * trainer.dataLoadShare).toFixed(1)}% of it filling batches; round 0 evaluated on the aggregator's thread while it trained`);
}
if (pt) {
  console.log(`ratio, PyTorch seconds / ours: round ${((pt.trainSeconds + pt.evalSeconds) / round.roundSeconds).toFixed(2)}x, training ${(pt.trainSeconds / round.trainSeconds).toFixed(2)}x, ` +
    `wall ${(pt.wallSeconds / o.wallSeconds).toFixed(2)}x (above 1 we are faster)`);
}
