/**
 * The dashboard's front page as data: every run with its state, round r/R, ETA and last accuracy,
 * and the live charts. The charts are the analysis's own Vega-Lite specs (analysis/charts.ts,
 * analysis/metrics-charts.ts) over the rounds so far, finished or not; the page only draws them.
 */
import type { TopLevelSpec } from 'vega-lite';
import { learningCurvesChart, timeBreakdownChart, type ChartDef } from '../analysis/charts.ts';
import { configLabel, shownConfigFields } from '../analysis/fields.ts';
import { storeTables } from '../analysis/load.ts';
import { lossByStepChart } from '../analysis/metrics-charts.ts';
import { stepTablesOf } from '../analysis/steps.ts';
import { roundTimingStats, seedCurves } from '../analysis/tables.ts';
import { latestRounds } from '../core/results/latest.ts';
import { type ConfigField, type RunKey, keyFieldsOf } from '../core/results/schema.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { plannedRounds } from '../core/aggregation/async-rule.ts';
import { describeState, etaSeconds, fmtDuration } from '../runner/progress.ts';
import { lockAbandoned } from '../runner/lock.ts';
import type { LiveStore } from './live-store.ts';

/**
 * A run record's status as the page shows it: a run that started and has not ended is running,
 * unless the sweep that ran it died without saying so (its lock names a process that is gone).
 */
export type RunState = 'running' | 'completed' | 'failed' | 'interrupted';
export const RUN_STATES: readonly RunState[] = ['running', 'completed', 'failed', 'interrupted'];

export interface RunRow {
  runId: string;
  key: string;
  /** The fields that tell this run from the others: "W=2 lr=1e-3 swap seed=1". */
  label: string;
  state: RunState;
  /** What it is doing, as the sweep's terminal view says it ("training round 3"), or its end state. */
  activity: string;
  /** The last round recorded (0 = the evaluation before training); null before any. */
  round: number | null;
  rounds: number;
  etaSeconds: number | null;
  eta: string;
  testAccuracy: number | null;
  startedAt: string;
  error: string | null;
}

export interface Overview {
  results: string;
  updatedAt: string;
  counts: Record<RunState, number>;
  runs: RunRow[];
  charts: ChartDef[];
  warnings: string[];
}

/** The part of the overview that follows runs.jsonl and rounds.jsonl (the step log changes more often). */
export interface RoundsView {
  counts: Record<RunState, number>;
  runs: RunRow[];
  charts: ChartDef[];
  warnings: string[];
  shown: ConfigField[];
}

export function overviewOf(live: LiveStore, rounds: RoundsView = roundsView(live), steps: ChartDef | null = stepsChart(live, rounds.shown)): Overview {
  const first = rounds.charts.filter((c) => c.name === 'learning-curves');
  const rest = rounds.charts.filter((c) => c.name !== 'learning-curves');
  return {
    results: live.dir,
    updatedAt: new Date().toISOString(),
    counts: rounds.counts,
    runs: rounds.runs,
    // the learning curves, the running runs' loss, then time per round
    charts: [...first, ...(steps ? [steps] : []), ...rest],
    warnings: [...live.tornWarnings(), ...rounds.warnings],
  };
}

export function roundsView(live: LiveStore): RoundsView {
  const latest = [...live.latestRuns().values()].filter((r) => keyFieldsOf(r.keyFields) !== null);
  const tables = storeTables({ records: live.runRecords, torn: [] }, { records: live.roundRecords, torn: [] });
  const keys = latest.map((r) => keyFieldsOf(r.keyFields)).filter((k): k is RunKey => k !== null);
  const shown = shownConfigFields(keys);
  const seeds = new Set(keys.map((k) => k.seed)).size > 1;
  const roundsByRun = new Map<string, RoundRecord[]>();
  for (const r of latestRounds(live.roundRecords.filter((x) => typeof x?.runId === 'string')).records) {
    const list = roundsByRun.get(r.runId) ?? [];
    list.push(r);
    roundsByRun.set(r.runId, list);
  }
  const abandoned = (key: string) => lockAbandoned(live.dir, key);
  const runs = latest.map((r) => runRow(r, (roundsByRun.get(r.runId) ?? []).sort((a, b) => a.round - b.round), shown, seeds, abandoned));
  const counts = Object.fromEntries(RUN_STATES.map((s) => [s, runs.filter((r) => r.state === s).length])) as Record<RunState, number>;
  return { counts, runs, charts: roundCharts(tables.rounds, shown), warnings: tables.warnings, shown };
}

/** Training loss against step of the running runs; null while none has step-log points. */
export function stepsChart(live: LiveStore, shown: readonly ConfigField[]): ChartDef | null {
  const steps = stepTablesOf(live.steps.points, live.stepLines, []);
  return steps.lossByStep.length > 0 ? { name: 'loss-by-step', title: 'Training loss against step (running runs)', spec: lossByStepChart(steps.lossByStep, shown) } : null;
}

function runRow(r: RunRecord, rounds: readonly RoundRecord[], shown: readonly ConfigField[], seeds: boolean, abandoned: (key: string) => boolean): RunRow {
  const key = keyFieldsOf(r.keyFields)!;
  const state: RunState = r.status !== 'started' ? r.status : abandoned(r.key) ? 'interrupted' : 'running';
  const last = rounds.at(-1);
  const total = r.plannedRounds ?? (r.config?.federation ? plannedRounds(r.config.federation) : key.rounds);
  const training = rounds.filter((x) => x.round >= 1);
  const eta = state === 'running' && last ? etaSeconds(total - last.round, training.length, training.reduce((a, x) => a + x.roundSeconds, 0)) : null;
  const activity =
    state !== 'running' ? state : last ? describeState({ state: 'training', round: last.round, rounds: total, trainers: 0, worldSize: key.worldSize }) : 'starting';
  return {
    runId: r.runId,
    key: r.key,
    label: `${configLabel(key, shown)}${seeds ? ` seed=${key.seed}` : ''}`,
    state,
    activity,
    round: last?.round ?? null,
    rounds: total,
    etaSeconds: eta,
    eta: eta === null ? '-' : fmtDuration(eta),
    testAccuracy: last?.testAccuracy ?? null,
    startedAt: r.startedAt,
    error: r.error ?? null,
  };
}

/** The analysis's subtitles speak of finished runs; here the charts include the rounds so far. */
function withSubtitle(spec: TopLevelSpec, subtitle: string): TopLevelSpec {
  const title = typeof spec.title === 'object' && !Array.isArray(spec.title) ? spec.title : { text: String(spec.title ?? '') };
  return { ...spec, title: { ...title, subtitle } };
}

function roundCharts(rounds: ReturnType<typeof storeTables>['rounds'], shown: readonly ConfigField[]): ChartDef[] {
  const charts: ChartDef[] = [];
  const curves = seedCurves(rounds);
  if (curves.length > 0) charts.push({ name: 'learning-curves', title: 'Test accuracy against round', spec: withSubtitle(learningCurvesChart(curves), 'test accuracy per round so far, running runs included: mean over seeds, band = mean ± 1 std; one panel per world size W') });
  const timing = roundTimingStats(rounds);
  if (timing.length > 0) charts.push({ name: 'time-breakdown', title: 'Time per round by phase', spec: withSubtitle(timeBreakdownChart(timing, shown), 'mean seconds per training round so far, running runs included; train = slowest trainer') });
  return charts;
}
