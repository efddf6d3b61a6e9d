/**
 * The step log (results/steps.jsonl) per configuration: training loss against global step and
 * against wall-clock time, and throughput over time, each as mean +/- std over seeds, plus a
 * summary table. The file is streamed once: a run's points go into typed arrays, so a store of a
 * million lines is a few tens of MB, and the curves are binned to at most 150 points per
 * configuration (a chart cannot show more).
 *
 * Per run, a bin's loss is the mean of its points over every slot; its throughput is the sum over
 * slots of each slot's mean samples/s in the bin. Over seeds, std is the sample std (n - 1) and
 * null with one seed, as in the round tables. Only runs that completed count.
 */
import { join } from 'node:path';
import { scanJsonLines } from '../core/results/jsonl-scan.ts';
import { STEPS_FILE } from '../core/results/store.ts';
import { tornLineWarnings } from '../core/results/jsonl.ts';
import type { ConfigKey } from '../core/results/schema.ts';

/** Bins per configuration: global steps of runs of one configuration coincide, so they can be
 * fine; the seeds' wall-clock times do not, so a time bin must be wide enough to hold a point of
 * every seed. */
const STEP_BINS = 150;
const TIME_BINS = 40;

/** A run whose steps count: its configuration and seed. */
export interface StepRun {
  runId: string;
  config: string;
  key: ConfigKey;
  seed: number;
}

export interface StepCurvePoint extends ConfigKey {
  config: string;
  /** Global step or elapsed seconds: the mean over the bin's points. */
  x: number;
  n: number;
  mean: number;
  std: number | null;
  lo: number;
  hi: number;
}

export interface StepSummary extends ConfigKey {
  config: string;
  runs: number;
  points: number;
  /** Last interval loss of each run (mean over its slots), mean over seeds. */
  finalLoss: number;
  /** Lowest interval loss of any point of any run. */
  bestLoss: number;
  /** Mean over points of a slot's samples/s. */
  samplesPerSecond: number;
  /** Highest global step reached. */
  steps: number;
}

export interface StepTables {
  lines: number;
  lossByStep: StepCurvePoint[];
  lossByTime: StepCurvePoint[];
  throughput: StepCurvePoint[];
  summary: StepSummary[];
  warnings: string[];
}

/** A growable column of float64. */
class Column {
  data = new Float64Array(256);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
}

export class RunPoints {
  readonly slot = new Column();
  readonly step = new Column();
  readonly loss = new Column();
  readonly elapsed = new Column();
  readonly sps = new Column();
  constructor(readonly run: StepRun) {}
}

/** A finite number field of a parsed line, or undefined. */
function numberAt(o: object, k: string): number | undefined {
  const v: unknown = Reflect.get(o, k);
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * Step-log points per run, added record by record (a whole file, or the lines a live reader has
 * seen so far). Only runs in `runs` are kept (others: unfinished, or filtered out by --where, are
 * skipped without a warning); the map may change between calls.
 */
export class StepPointSet {
  readonly points = new Map<string, RunPoints>();
  /** Records without the fields a point needs. */
  malformed = 0;

  constructor(private readonly runs: ReadonlyMap<string, StepRun>) {}

  add(r: unknown): void {
    if (typeof r !== 'object' || r === null) {
      this.malformed++;
      return;
    }
    const runId: unknown = Reflect.get(r, 'runId');
    const slot = numberAt(r, 'slot');
    const step = numberAt(r, 'globalStep');
    const loss = numberAt(r, 'loss');
    const elapsed = numberAt(r, 'elapsedSeconds');
    const sps = numberAt(r, 'samplesPerSecond');
    if (typeof runId !== 'string' || slot === undefined || step === undefined || loss === undefined || elapsed === undefined || sps === undefined) {
      this.malformed++;
      return;
    }
    const run = this.runs.get(runId);
    if (!run) return;
    let p = this.points.get(runId);
    if (!p) this.points.set(runId, (p = new RunPoints(run)));
    p.slot.push(slot);
    p.step.push(step);
    p.loss.push(loss);
    p.elapsed.push(elapsed);
    p.sps.push(sps);
  }

  warnings(): string[] {
    return this.malformed > 0 ? [`${STEPS_FILE}: skipped ${this.malformed} record(s) without runId, slot, globalStep, loss, elapsedSeconds and samplesPerSecond`] : [];
  }
}

/** Streams steps.jsonl of `dir` into per-run columns, keeping the runs in `runs`. */
export function readStepPoints(dir: string, runs: ReadonlyMap<string, StepRun>): { points: Map<string, RunPoints>; lines: number; warnings: string[] } {
  const set = new StepPointSet(runs);
  const scan = scanJsonLines(join(dir, STEPS_FILE), (r) => set.add(r));
  return { points: set.points, lines: scan.records, warnings: [...tornLineWarnings(STEPS_FILE, scan.torn), ...set.warnings()] };
}

/** Mean and sample std over seeds of one bin. */
function spread(values: readonly number[]): { n: number; mean: number; std: number | null } {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, std: null };
  const v = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { n, mean, std: Math.sqrt(v) };
}

interface BinAcc {
  xSum: number;
  xCount: number;
  /** Per run: its value in this bin. */
  values: number[];
}

type Axis = 'step' | 'elapsed';

/** One configuration's curve: per bin of the axis, the runs' values, then mean +/- std over seeds. */
function curve(runs: readonly RunPoints[], axis: Axis, value: (p: RunPoints, idx: number[]) => number): StepCurvePoint[] {
  let max = 0;
  for (const p of runs) for (let i = 0; i < p[axis].length; i++) max = Math.max(max, p[axis].data[i]);
  const bins = axis === 'step' ? STEP_BINS : TIME_BINS;
  const width = axis === 'step' ? Math.max(1, Math.ceil(max / bins)) : max / bins || 1;
  const acc = new Map<number, BinAcc>();
  for (const p of runs) {
    const byBin = new Map<number, number[]>();
    const col = p[axis];
    for (let i = 0; i < col.length; i++) {
      const b = Math.min(bins - 1, Math.floor((axis === 'step' ? col.data[i] - 1 : col.data[i]) / width));
      const list = byBin.get(b);
      if (list) list.push(i);
      else byBin.set(b, [i]);
    }
    for (const [b, idx] of byBin) {
      const bin = acc.get(b) ?? { xSum: 0, xCount: 0, values: [] };
      acc.set(b, bin);
      for (const i of idx) bin.xSum += col.data[i];
      bin.xCount += idx.length;
      bin.values.push(value(p, idx));
    }
  }
  const { run } = runs[0];
  return [...acc.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([, bin]) => {
      const s = spread(bin.values);
      return { ...run.key, config: run.config, x: bin.xSum / bin.xCount, ...s, lo: s.mean - (s.std ?? 0), hi: s.mean + (s.std ?? 0) };
    });
}

const meanLoss = (p: RunPoints, idx: number[]) => idx.reduce((a, i) => a + p.loss.data[i], 0) / idx.length;

/** Sum over slots of each slot's mean samples/s among the points. */
function totalThroughput(p: RunPoints, idx: number[]): number {
  const bySlot = new Map<number, { sum: number; n: number }>();
  for (const i of idx) {
    const s = bySlot.get(p.slot.data[i]) ?? { sum: 0, n: 0 };
    s.sum += p.sps.data[i];
    s.n++;
    bySlot.set(p.slot.data[i], s);
  }
  let total = 0;
  for (const s of bySlot.values()) total += s.sum / s.n;
  return total;
}

function summaryOf(runs: readonly RunPoints[]): StepSummary {
  let points = 0;
  let best = Number.POSITIVE_INFINITY;
  let spsSum = 0;
  let steps = 0;
  const finals: number[] = [];
  for (const p of runs) {
    points += p.loss.length;
    let last = 0;
    for (let i = 0; i < p.loss.length; i++) {
      best = Math.min(best, p.loss.data[i]);
      spsSum += p.sps.data[i];
      last = Math.max(last, p.step.data[i]);
    }
    steps = Math.max(steps, last);
    const atLast: number[] = [];
    for (let i = 0; i < p.step.length; i++) if (p.step.data[i] === last) atLast.push(i);
    finals.push(meanLoss(p, atLast));
  }
  const { run } = runs[0];
  return { ...run.key, config: run.config, runs: runs.length, points, finalLoss: spread(finals).mean, bestLoss: best, samplesPerSecond: spsSum / points, steps };
}

/** The step-log tables of the runs in `runs` (completed runs after any --where filter). */
export function stepTables(dir: string, runs: ReadonlyMap<string, StepRun>): StepTables {
  const { points, lines, warnings } = readStepPoints(dir, runs);
  return stepTablesOf(points, lines, warnings);
}

/** The step-log tables of points already read (`lines` and `warnings` are passed through). */
export function stepTablesOf(points: ReadonlyMap<string, RunPoints>, lines: number, warnings: string[]): StepTables {
  const byConfig = new Map<string, RunPoints[]>();
  for (const p of points.values()) {
    if (p.loss.length === 0) continue;
    const list = byConfig.get(p.run.config) ?? [];
    list.push(p);
    byConfig.set(p.run.config, list);
  }
  const configs = [...byConfig.keys()].sort();
  const each = <T>(f: (rs: RunPoints[]) => T[]) => configs.flatMap((c) => f(byConfig.get(c)!));
  return {
    lines,
    lossByStep: each((rs) => curve(rs, 'step', meanLoss)),
    lossByTime: each((rs) => curve(rs, 'elapsed', meanLoss)),
    throughput: each((rs) => curve(rs, 'elapsed', totalThroughput)),
    summary: configs.map((c) => summaryOf(byConfig.get(c)!)),
    warnings,
  };
}
