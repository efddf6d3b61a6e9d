/**
 * Where a round's memory goes: real fedslice roles (metaserver, aggregator, trainers as processes
 * over real sockets) with the memory probe on (FEDSLICE_MEMORY_PROBE, core/compute/memory-probe.ts),
 * printed beside the same training recipe in PyTorch measured in the same run
 * (bench/torch_memory.py: the full model, Adam, a few steps of batch 32, a copy of the starting
 * weights and the delta).
 *
 *   nice -n 10 node --import tsx bench/memory.ts                  # full width: GBs, minutes
 *   nice -n 10 node --import tsx bench/memory.ts --width 0.125    # a quick look
 *   nice -n 10 node --import tsx bench/memory.ts --runs trainer --rounds 3   # the trainer alone: quick
 *   options: --rounds 10 (fedavg run, growth from round 2 to the last) --steps 2 (per round)
 *            --echo 8 (trainers of the aggregator row) --echo-rounds 3 (its rounds; 10 gives the aggregator's
 *            growth from round 2 to 10 without training) --runs slice,fedavg,echo[,trainer] (which runs) --no-torch
 *            --repo DIR (run the roles of another checkout, e.g. a worktree of an older commit: without
 *            the probe only the sampled peaks are printed; compare two invocations' tables)
 * PyTorch is /usr/bin/python3 or $FEDSLICE_PYTHON; without torch its column says so and is skipped.
 *
 * Runs: slice W=2 (2 rounds), fedavg W=2 (--rounds), and an aggregator with --echo fedavg trainers
 * that answer each task with a zero delta without training (--echo-rounds); with `trainer` in --runs, also
 * a fedavg trainer's work alone in a process (LocalModel, trainModel, the delta over a fresh copy of
 * the model each round standing for the received frame; it also holds the starting weights, one
 * model more than a trainer, and has no sockets). Each process's peak is the
 * largest per-phase peak of its probe lines (the probe resets the kernel's high-water mark at each
 * phase boundary, so a line's peak is its phase's). Prints the load average before and after.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { initBackend } from '../core/compute/backend.ts';
import { markMemory, MEMORY_PROBE_ENV, type MemoryMark } from '../core/compute/memory-probe.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import { initialWeights } from '../core/model/init.ts';
import { cloneWeights } from '../core/model/tensor.ts';
import { range } from '../core/rng.ts';
import { LocalModel } from '../core/training/local-model.ts';
import { trainModel } from '../core/training/train.ts';
import { writeSynthetic } from '../core/data/synthetic.ts';
import { alexnetLayers, parameterCount } from '../core/model/spec.ts';
import { decode, maxFrameBytes } from '../core/wire/codec.ts';
import { aggregatorToTrainer } from '../core/wire/schema.ts';
import { frameBytes, receiveFragments, sendToAggregator, unmaskedFrames } from '../core/wire/socket.ts';
import { credentialHeaders } from '../core/wire/token.ts';
import { UpdateGate } from '../core/wire/update-gate.ts';
import { connectMetaserver } from '../metaserver/client.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'bench-memory';
const GB = 1e9;

const { values } = parseArgs({
  options: {
    width: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '10' },
    steps: { type: 'string', default: '2' },
    echo: { type: 'string', default: '8' },
    'echo-rounds': { type: 'string', default: '3' },
    runs: { type: 'string', default: 'slice,fedavg,echo' },
    repo: { type: 'string' },
    'no-torch': { type: 'boolean', default: false },
    // internal: this file run as the echo trainers of the aggregator row, or as the lone trainer
    'echo-for': { type: 'string' },
    'lone-trainer': { type: 'boolean', default: false },
    job: { type: 'string' },
  },
});

const BIN = join(values.repo ?? REPO, 'bin', 'fedslice.js');
const width = Number(values.width);
const modelBytes = parameterCount(alexnetLayers({ width, numClasses: 100 })) * 4;
if (values['echo-for']) {
  await echoTrainers(values['echo-for'], values.job ?? '', Number(values.echo));
  process.exit(0);
}
if (values['lone-trainer']) {
  await loneTrainer(Number(values.rounds), Number(values.steps));
  process.exit(0);
}

const rounds = Number(values.rounds);
const steps = Number(values.steps);
const echoCount = Number(values.echo);
const echoRounds = Number(values['echo-rounds']);
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loadBefore = load();
const dir = mkdtempSync(join(tmpdir(), 'fedslice-memory-'));
const dataDir = join(dir, 'data');
// 128 test images: four of the aggregator's evaluation batches (32), so its working set is whole and
// each evaluation at full width is short
writeSynthetic(dataDir, { numClasses: 100, trainCount: 8 * 32 * steps, testCount: 128, seed: 0 });

const torch = values['no-torch'] ? { skipped: 'skipped (--no-torch)' } : runTorch();
try {
  const runs = new Set(values.runs.split(','));
  const none: Run = { marks: new Map(), sampled: new Map() };
  const lone = runs.has('trainer') ? await runLoneTrainer() : none;
  const slice = runs.has('slice') ? await runFederation('slice', { mode: 'slice', worldSize: 2, rounds: 2, trainers: 'real' }) : none;
  const fedavg = runs.has('fedavg') ? await runFederation('fedavg', { mode: 'fedavg', worldSize: 2, rounds, trainers: 'real' }) : none;
  const echo = runs.has('echo') ? await runFederation('echo', { mode: 'fedavg', worldSize: echoCount, rounds: echoRounds, trainers: 'echo' }) : none;
  report({ slice, fedavg, echo, lone, torch });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// ---- the runs --------------------------------------------------------------------------------

interface RunSpec {
  mode: 'slice' | 'fedavg';
  worldSize: number;
  rounds: number;
  trainers: 'real' | 'echo';
}

/** Probe lines by process ("aggregator", "trainer t0", ...). */
type Marks = Map<string, MemoryMark[]>;

/** A run's probe lines and each process's largest VmRSS sampled from outside every 100 ms. */
interface Run {
  marks: Marks;
  sampled: Map<string, number>;
}

async function runFederation(name: string, spec: RunSpec): Promise<Run> {
  const probe = join(dir, `${name}.probe.jsonl`);
  writeFileSync(probe, '');
  const config = join(dir, `${name}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      name,
      dataset: { name: 'synthetic', dir: dataDir },
      model: { width, numClasses: 100 },
      federation: { worldSize: spec.worldSize, mode: spec.mode, rounds: spec.rounds, roundTimeoutS: 3600 },
      train: { learningRate: 1e-4, batchSize: 32, epochs: 1, maxStepsPerEpoch: steps },
      seed: 1,
    }),
  );
  const env = { FEDSLICE_TOKEN: TOKEN, [MEMORY_PROBE_ENV]: probe };
  const meta = role(['metaserver', '--port', '0'], {});
  const url = await meta.line(/listening on (ws:\/\/\S+)/);
  const children = [meta.child];
  const sampled = new Map<string, number>();
  const watched: [string, ChildProcess][] = [];
  const sampler = setInterval(() => {
    for (const [who, c] of watched) sampled.set(who, Math.max(sampled.get(who) ?? 0, vmRss(c.pid)));
  }, 100);
  try {
    const agg = role(['aggregator', '--config', config, '--metaserver', url, '--job', name, '--results', join(dir, `results-${name}`)], env);
    children.push(agg.child);
    watched.push(['aggregator', agg.child]);
    if (spec.trainers === 'real') {
      for (let i = 0; i < spec.worldSize; i++) {
        const t = role(['trainer', '--config', config, '--metaserver', url, '--job', name, '--id', `t${i}`], env).child;
        children.push(t);
        watched.push([`trainer t${i}`, t]);
      }
    } else {
      const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--echo-for', url, '--job', name, '--echo', String(spec.worldSize), '--width', String(width)];
      children.push(spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, FEDSLICE_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'inherit'] }));
    }
    const code = await agg.exit;
    if (code !== 0) throw new Error(`the ${name} run's aggregator exited with ${code}:\n${agg.output()}`);
  } finally {
    clearInterval(sampler);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
  const marks: Marks = new Map();
  for (const line of readFileSync(probe, 'utf8').split('\n').filter(Boolean)) {
    const m: MemoryMark = JSON.parse(line);
    marks.set(m.who, [...(marks.get(m.who) ?? []), m]);
  }
  return { marks, sampled };
}

/** The lone trainer (this file with --lone-trainer) in a process of its own, with the probe on. */
async function runLoneTrainer(): Promise<Run> {
  const probe = join(dir, 'trainer.probe.jsonl');
  writeFileSync(probe, '');
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--lone-trainer', '--width', String(width), '--rounds', String(rounds), '--steps', String(steps)];
  const child = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, [MEMORY_PROBE_ENV]: probe }, stdio: ['ignore', 'ignore', 'inherit'] });
  const sampled = new Map<string, number>();
  const sampler = setInterval(() => sampled.set('trainer', Math.max(sampled.get('trainer') ?? 0, vmRss(child.pid))), 100);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`the lone trainer exited with ${code}`);
  const marks: Marks = new Map([['trainer', readFileSync(probe, 'utf8').split('\n').filter(Boolean).map((l): MemoryMark => JSON.parse(l))]]);
  return { marks, sampled };
}

/**
 * A fedavg trainer's work without sockets: each round a fresh copy of the model arrives (as a
 * received frame would), one LocalModel trains it `steps` steps of batch 32 and writes the delta
 * over it, marking the same phases as trainer/run.ts.
 */
async function loneTrainer(roundCount: number, stepCount: number): Promise<void> {
  await initBackend('auto');
  const layers = alexnetLayers({ width, numClasses: 100 });
  const start = initialWeights(layers, 1);
  const { train } = generateSynthetic({ numClasses: 100, trainCount: 32 * stepCount, testCount: 10, seed: 0 });
  const hyper = { learningRate: 1e-4, weightDecay: 1e-4, batchSize: 32, epochs: 1, augment: false, maxStepsPerEpoch: stepCount };
  const model = new LocalModel();
  for (let round = 1; round <= roundCount; round++) {
    const task = cloneWeights(start);
    markMemory('trainer', round, 'received');
    await trainModel(model, { layers, weights: task, data: train, indices: range(train.count), hyper, seed: 1, round, onPhase: (p) => markMemory('trainer', round, p) });
    model.deltaInPlace(task);
    markMemory('trainer', round, 'delta');
  }
  model.dispose();
}

function vmRss(pid: number | undefined): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // exited
  }
}

function role(args: string[], env: Record<string, string>): { child: ChildProcess; exit: Promise<number | null>; line: (re: RegExp) => Promise<string>; output: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const listeners: (() => void)[] = [];
  const onData = (d: Buffer) => {
    text = (text + d.toString()).slice(-20_000);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = re.exec(text);
        if (m) resolve(m[1]);
      };
      listeners.push(check);
      check();
      void exit.then(() => reject(new Error(`exited before printing ${re}:\n${text}`)));
    });
  return { child, exit, line, output: () => text };
}

/** `count` trainers that answer every task at once with a zero delta (the received arrays, zeroed), sent when granted. */
async function echoTrainers(metaUrl: string, job: string, count: number): Promise<void> {
  const meta = await connectMetaserver({ url: metaUrl, job, role: 'trainer', id: 'echo', token: TOKEN });
  const address = await meta.waitForAggregator(600_000);
  const maxPayload = maxFrameBytes(modelBytes);
  await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const ws = new WebSocket(address, { maxPayload, headers: credentialHeaders(job, TOKEN), ...unmaskedFrames });
      receiveFragments(ws);
      ws.on('open', () => sendToAggregator(ws, { type: 'join', job, id: `echo${i}` }));
      // updates go through the trainer's flow control: announced, then written when granted
      const gate = new UpdateGate((m) => sendToAggregator(ws, m));
      ws.on('message', (data) => {
        const d = decode(aggregatorToTrainer, frameBytes(data));
        if (d.ok && d.msg.type === 'grant') gate.granted(d.msg);
        if (!d.ok || d.msg.type !== 'task') return;
        const t = d.msg;
        for (const w of t.weights) w.data.fill(0);
        const metrics = { trainLoss: 1, trainSeconds: 0.001, samplesPerSecond: 1000, steps: 1 };
        gate.offer({ type: 'update', job, round: t.round, rank: t.rank, delta: t.weights, numSamples: 1, metrics });
      });
      return new Promise<void>((resolve) => ws.on('close', () => resolve()));
    }),
  );
  meta.close();
}

interface TorchFigures {
  peakRssBytes: number;
  phases: Record<string, number>;
  torch: string;
}

function runTorch(): TorchFigures | { skipped: string } {
  const python = process.env.FEDSLICE_PYTHON ?? '/usr/bin/python3';
  const r = spawnSync(python, [join(REPO, 'bench', 'torch_memory.py'), '--width', String(width), '--steps', String(steps + 1)], { encoding: 'utf8', cwd: join(REPO, 'bench') });
  if (r.error || r.status !== 0) return { skipped: `skipped: ${python} cannot run torch (${(r.error?.message ?? r.stderr.trim().split('\n').pop() ?? '').slice(0, 120)})` };
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

// ---- the report ------------------------------------------------------------------------------

function peakOf(marks: MemoryMark[], round?: number): number {
  return Math.max(0, ...marks.filter((m) => round === undefined || m.round === round).map((m) => m.peakRssBytes));
}

/** The wasm heap at each round's last mark, rounds 1 to the last, as "1.22 1.22 ...": a heap never shrinks, so any step up stays. */
function heapByRound(marks: MemoryMark[]): string {
  const last = Math.max(0, ...marks.map((m) => m.round));
  return Array.from({ length: last }, (_, i) => gb(marks.filter((m) => m.round === i + 1).at(-1)?.wasmHeapBytes)).join(' ');
}

function gb(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : (n / GB).toFixed(2);
}

function table(head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log('');
}

function phaseRows(marks: MemoryMark[], round: number): string[][] {
  return marks
    .filter((m) => m.round === round)
    .map((m) => [m.phase, gb(m.peakRssBytes), gb(m.rssBytes), gb(m.wasmHeapBytes), gb(m.tensorBytes), String(m.tensorCount), gb(m.arrayBuffersBytes), gb(m.heapUsedBytes)]);
}

/** Per round: seconds from its tasks sent to its merge (the collection and the merge). */
function collectSeconds(marks: MemoryMark[]): number[] {
  const sent = new Map(marks.filter((m) => m.phase === 'tasks sent').map((m) => [m.round, m.time]));
  return marks.filter((m) => m.phase === 'merged' && sent.has(m.round)).map((m) => (m.time - sent.get(m.round)!) / 1000);
}

/** The aggregator's evaluation working set: the evaluation phase's peak over the resident memory before it. */
function evalWorkingSet(marks: MemoryMark[]): number {
  let most = 0;
  marks.forEach((m, i) => {
    if (m.phase === 'evaluated' && i > 0) most = Math.max(most, m.peakRssBytes - marks[i - 1].rssBytes);
  });
  return most;
}

function report(r: { slice: Run; fedavg: Run; echo: Run; lone: Run; torch: TorchFigures | { skipped: string } }): void {
  const torchPeak = 'peakRssBytes' in r.torch ? r.torch.peakRssBytes : null;
  const vsTorch = (n: number) => (torchPeak ? `${(n / torchPeak).toFixed(2)}x` : '-');
  /** A process's peak: the larger of its probe lines' and the VmRSS sampled from outside. */
  const peak = (run: Run, who: string) => Math.max(run.sampled.get(who) ?? 0, peakOf(run.marks.get(who) ?? []));
  console.log(`fedslice memory, width ${width} (${(modelBytes / 1e6).toFixed(0)} MB of weights), ${steps} steps of batch 32 a round${values.repo ? `, roles from ${values.repo}` : ''}`);
  console.log(`load average before: ${loadBefore}\n`);
  const rows: string[][] = [];
  for (const [name, run] of [['slice W=2', r.slice], ['fedavg W=2', r.fedavg], [`fedavg W=${echoCount} echo trainers`, r.echo], ['fedavg trainer alone', r.lone]] as const) {
    for (const who of [...run.sampled.keys()].sort()) rows.push([name, who, gb(peak(run, who)), vsTorch(peak(run, who))]);
  }
  rows.push(['PyTorch', `trainer (${'torch' in r.torch ? r.torch.torch : 'absent'})`, torchPeak ? gb(torchPeak) : '-', torchPeak ? '1.00x' : '-']);
  console.log('Peak RSS per process (GB), against PyTorch for the same training');
  table(['run', 'process', 'peak GB', 'vs torch'], rows);
  if ('skipped' in r.torch) console.log(`PyTorch: ${r.torch.skipped}\n`);

  const head = ['phase (ends at)', 'peak GB', 'rss GB', 'wasm GB', 'tfjs GB', 'tensors', 'buffers GB', 'js heap GB'];
  for (const [name, trainer] of [['fedavg trainer t0', r.fedavg.marks.get('trainer t0') ?? []], ['fedavg trainer alone', r.lone.marks.get('trainer') ?? []]] as const) {
    if (!trainer.length) continue;
    const last = Math.max(0, ...trainer.map((m) => m.round));
    console.log(`${name}, round 2 by phase (peak: the phase's; the rest: at its end)`);
    table(head, phaseRows(trainer, 2));
    console.log(`${name}, round ${last}`);
    table(head, phaseRows(trainer, last));
  }
  if ('phases' in r.torch) {
    console.log('PyTorch, RSS at each phase boundary');
    table(['phase', 'rss GB'], [...Object.entries(r.torch.phases).map(([p, v]) => [p, gb(v)]), ['peak', gb(r.torch.peakRssBytes)]]);
  }
  const agg = r.echo.marks.get('aggregator') ?? [];
  if (agg.length) {
    const last = Math.max(...agg.map((m) => m.round));
    for (const round of new Set([2, last])) {
      console.log(`aggregator with ${echoCount} echo trainers, round ${round} by phase`);
      table(head, phaseRows(agg, round));
    }
    console.log(`aggregator with ${echoCount} echo trainers: seconds from tasks sent to merged, rounds 1-${last} (under load, direction only): ${collectSeconds(agg).map((s) => s.toFixed(2)).join(' ')}\n`);
  }

  let worstGrowth: number | null = null;
  if (r.fedavg.marks.size || r.lone.marks.size || agg.length) {
    console.log('Growth: peak RSS of round 2 against the last round (fedavg W=2; the echo aggregator with --echo-rounds > 2; the trainer alone), and the wasm heap at the end of each round from 1');
    const growth: string[][] = [];
    const echoAgg: [string, MemoryMark[]][] = agg.length && Math.max(...agg.map((m) => m.round)) > 2 ? [[`aggregator, ${echoCount} echo trainers`, agg]] : [];
    for (const [who, ms] of [...r.fedavg.marks, ...echoAgg, ...[...r.lone.marks].map(([w, m]): [string, MemoryMark[]] => [`${w} alone`, m])]) {
      const lastRound = Math.max(...ms.map((m) => m.round));
      const g = peakOf(ms, lastRound) / peakOf(ms, 2) - 1;
      worstGrowth = Math.max(worstGrowth ?? -Infinity, g);
      growth.push([who, gb(peakOf(ms, 2)), `${gb(peakOf(ms, lastRound))} (round ${lastRound})`, `${(100 * g).toFixed(1)}%`, heapByRound(ms)]);
    }
    table(['process', 'round 2 GB', 'last GB', 'growth', 'wasm heap GB by round'], growth);
  }

  const met = (ok: boolean) => (ok ? '  met' : '  NOT met');
  console.log('Goals');
  const trainers = [...r.fedavg.sampled.keys()].filter((w) => w.startsWith('trainer'));
  if (trainers.length) {
    const trainerPeak = Math.max(...trainers.map((w) => peak(r.fedavg, w)));
    console.log(`  fedavg trainer peak ${gb(trainerPeak)} GB = ${vsTorch(trainerPeak)} PyTorch's (goal <= 1.25x)${torchPeak ? met(trainerPeak <= 1.25 * torchPeak) : ''}`);
  }
  if (r.lone.sampled.size) {
    const lonePeak = peak(r.lone, 'trainer');
    console.log(`  fedavg trainer alone (no sockets, no frame) peak ${gb(lonePeak)} GB = ${vsTorch(lonePeak)} PyTorch's`);
  }
  if (r.echo.sampled.size) {
    const aggPeak = peak(r.echo, 'aggregator');
    const evalSet = agg.length ? evalWorkingSet(agg) : null;
    const budget = evalSet === null ? null : 3 * modelBytes + evalSet;
    console.log(
      `  aggregator with ${echoCount} trainers peak ${gb(aggPeak)} GB; 3x model ${gb(3 * modelBytes)} GB + evaluation working set ${gb(evalSet)} GB = ${gb(budget)} GB${budget === null ? '' : met(aggPeak <= budget)}`,
    );
    const ready = agg.find((m) => m.phase === 'ready');
    if (ready && evalSet !== null) {
      const floor = ready.rssBytes + 3 * modelBytes + evalSet;
      console.log(
        `    what a collecting round holds by design: resident when ready ${gb(ready.rssBytes)} GB (node, tfjs, test set, model) + float64 sum ${gb(2 * modelBytes)} + one checked update ${gb(modelBytes)} + evaluation working set ${gb(evalSet)} = ${gb(floor)} GB; peak - that = ${gb(aggPeak - floor)} GB`,
      );
    }
  }
  if (worstGrowth !== null) console.log(`  growth from round 2 to the last: worst ${(100 * worstGrowth).toFixed(1)}% (goal < 5%)${met(worstGrowth < 0.05)}`);
  console.log(`load average after: ${load()}`);
}
