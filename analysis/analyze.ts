/**
 * `fedslice analyze`: load the store, print the tables, export the per-configuration table,
 * and unless told not to, render the charts and report.html into the output folder.
 */
import * as aq from 'arquero';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FedsliceError } from '../core/errors.ts';
import { type ChartDef, accuracyOverTimeChart, hyperparameterChart, syncAsyncChart, learningCurvesChart, scalingChart, timeBreakdownChart } from './charts.ts';
import { CONFIG_FIELDS, pickConfig } from '../core/results/schema.ts';
import { shownConfigFields } from './fields.ts';
import { type TableView, configStatsView, modeView, renderText, summaryView, swapView, timingView, topView } from './format.ts';
import { loadStore } from './load.ts';
import type { ReportChart } from './report.ts';
import {
  type ConfigStats,
  type Metric,
  type StoreSummary,
  configStats,
  curvePoints,
  finalRuns,
  scalingRows,
  summarize,
  swapComparison,
  timingStats,
  topConfigs,
} from './tables.ts';
import { hasModeComparison, modeComparison, timePoints } from './sync-async.ts';
import { type WhereClause, applyWhere, describeWhere } from './where.ts';
import { bestRunsView, latencyView, memoryView, stepSummaryView } from './metrics-format.ts';
import { bestRuns, parseMetric } from './best.ts';
import { fractionChart, fractionRows, fractionView } from './fraction.ts';
import { lossByStepChart, lossByTimeChart, throughputChart } from './metrics-charts.ts';
import { type StepRun, type StepTables, stepTables } from './steps.ts';
import { exportSteps } from './steps-export.ts';
import { trainerFiguresTable } from './trainer-figures.ts';

export interface AnalyzeOptions {
  results: string;
  plots: boolean;
  /** Defaults to <results>/report. */
  out?: string;
  top: number;
  /** Any recorded metric, optionally name:max or name:min (analysis/best.ts). */
  metric: string;
  where: WhereClause[];
  csv?: string;
  json?: string;
  /** Export the step log (steps.jsonl) of the runs analysed. */
  stepsCsv?: string;
  stepsJson?: string;
}

export interface AnalyzeIo {
  out: (text: string) => void;
  warn: (text: string) => void;
}

export interface AnalyzeResult {
  stats: ConfigStats[];
  /** Files written (exports, charts, report), absolute paths. */
  files: string[];
}

const stdio: AnalyzeIo = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  warn: (t) => process.stderr.write(`warning: ${t}\n`),
};

export async function runAnalyze(opts: AnalyzeOptions, io: AnalyzeIo = stdio): Promise<AnalyzeResult> {
  const loaded = loadStore(opts.results);
  for (const w of loaded.warnings) io.warn(w);

  const runs = applyWhere(loaded.runs, opts.where);
  const rounds = applyWhere(loaded.rounds, opts.where);
  if (opts.where.length > 0 && runs.numRows() === 0 && rounds.numRows() === 0) {
    throw new FedsliceError(
      'FEDSLICE_ERR_WHERE',
      `no runs in ${opts.results} match --where ${describeWhere(opts.where)}; drop the filter to see the values present`,
    );
  }

  const summary = summarize({ runs, rounds });
  const stats = configStats(rounds);
  const timing = timingStats(rounds);
  const shown = shownConfigFields(stats.length ? stats : (rounds.objects() as ConfigStats[]));
  const metric = parseMetric(opts.metric);
  const topMetric: Metric = metric.name === 'testLoss' ? 'testLoss' : 'testAccuracy';
  const tables: TableView[] = [
    summaryView(summary),
    configStatsView(stats, shown),
    topView(topConfigs(stats, topMetric, opts.top), shown, topMetric),
    bestRunsView(bestRuns(runs, rounds, metric, opts.top), shown, metric),
    swapView(swapComparison(stats), shown),
    timingView(timing, shown),
  ];
  const modes = hasModeComparison(rounds) ? modeComparison(runs, rounds) : null;
  if (modes) tables.push(modeView(modes, shown));
  const fractions = fractionRows(stats, timing);
  if (fractions.length > 0) tables.push(fractionView(fractions, shown));
  const steps = stepTables(opts.results, stepRuns(runs, 'completed'));
  loaded.warnings.push(...steps.warnings);
  for (const w of steps.warnings) io.warn(w);
  if (steps.lines > 0) tables.push(stepSummaryView(steps.summary, shown));
  const figures = trainerFiguresTable(rounds);
  if (figures.length > 0) tables.push(latencyView(figures, shown), memoryView(figures, shown));

  const header = [`results: ${resolve(opts.results)}`];
  if (opts.where.length) header.push(`filter: ${describeWhere(opts.where)}`);
  io.out(`${header.join('\n')}\n`);
  for (const t of tables) io.out(`${renderText(t)}\n`);

  const files: string[] = [];
  if (opts.csv) files.push(writeExport(opts.csv, aq.from(exportRows(stats)).toCSV() + '\n'));
  if (opts.json) files.push(writeExport(opts.json, JSON.stringify(exportRows(stats), null, 2) + '\n'));
  for (const [path, format] of [[opts.stepsCsv, 'csv'], [opts.stepsJson, 'json']] as const) {
    if (path) files.push(exportSteps(opts.results, stepRuns(runs), path, format).path);
  }

  if (opts.plots) {
    const outDir = resolve(opts.out ?? join(opts.results, 'report'));
    mkdirSync(outDir, { recursive: true });
    const { writeChart } = await import('./render.ts');
    const { buildReport } = await import('./report.ts');
    const charts: ReportChart[] = [];
    for (const chart of [...chartsFor(rounds, stats, timing, shown), ...modeChartsFor(rounds, modes), ...stepChartsFor(steps, shown), ...fractionChartsFor(fractions, shown)]) {
      const rendered = await writeChart(outDir, chart);
      for (const w of rendered.warnings) io.warn(`chart ${chart.name}: vega-lite: ${w}`);
      charts.push({ name: chart.name, title: chart.title, svg: rendered.svg });
      files.push(...['vl.json', 'svg', 'png'].map((ext) => join(outDir, `${chart.name}.${ext}`)));
    }
    const reportPath = join(outDir, 'report.html');
    const warnings = loaded.warnings.map((w) => `warning: ${w}`);
    writeFileSync(
      reportPath,
      buildReport({
        title: 'fedslice results',
        header: [...header, summaryLine(summary), `generated ${new Date().toISOString()}`, ...warnings],
        tables,
        charts,
      }),
    );
    files.push(reportPath);
    io.out(`wrote ${charts.length} chart(s) (.vl.json, .svg, .png) and report.html to ${outDir}`);
  }
  return { stats, files };
}

function summaryLine(s: StoreSummary): string {
  const statuses = s.byStatus.map((b) => `${b.runs} ${b.status}`).join(', ');
  return `${s.runs} runs (${statuses}); ${s.finishedRuns} finished; ${s.roundRecords} round records; ${s.configurations} configurations`;
}

function chartsFor(
  rounds: Parameters<typeof curvePoints>[0],
  stats: ConfigStats[],
  timing: ReturnType<typeof timingStats>,
  shown: ReturnType<typeof shownConfigFields>,
): ChartDef[] {
  if (stats.length === 0) return [];
  const charts: ChartDef[] = [
    { name: 'learning-curves', title: 'Learning curves: test accuracy vs round', spec: learningCurvesChart(curvePoints(rounds)) },
    { name: 'hyperparameters', title: 'Final test accuracy by hyperparameter', spec: hyperparameterChart(finalRuns(rounds)) },
  ];
  if (timing.length > 0) {
    charts.push(
      { name: 'scaling', title: 'Scaling: accuracy, seconds per round and speedup vs world size', spec: scalingChart(scalingRows(stats, timing)) },
      { name: 'time-breakdown', title: 'Time per training round by phase', spec: timeBreakdownChart(timing, shown) },
    );
  }
  return charts;
}

function modeChartsFor(rounds: Parameters<typeof timePoints>[0], modes: ReturnType<typeof modeComparison> | null): ChartDef[] {
  if (!modes || modes.length === 0) return [];
  const charts: ChartDef[] = [{ name: 'sync-vs-async', title: 'Synchronous vs asynchronous: time, accuracy and speedup per world size', spec: syncAsyncChart(modes) }];
  const points = timePoints(rounds);
  if (points.length > 0) charts.push({ name: 'accuracy-over-time', title: 'Test accuracy against wall-clock time and samples seen', spec: accuracyOverTimeChart(points) });
  return charts;
}

function fractionChartsFor(rows: ReturnType<typeof fractionRows>, shown: ReturnType<typeof shownConfigFields>): ChartDef[] {
  return rows.length ? [{ name: 'data-fraction', title: 'Data-fraction study: accuracy and training time against the fraction', spec: fractionChart(rows, shown) }] : [];
}

function stepChartsFor(steps: StepTables, shown: ReturnType<typeof shownConfigFields>): ChartDef[] {
  if (steps.lossByStep.length === 0) return [];
  return [
    { name: 'loss-by-step', title: 'Training loss against step (step log)', spec: lossByStepChart(steps.lossByStep, shown) },
    { name: 'loss-by-time', title: 'Training loss against wall-clock time (step log)', spec: lossByTimeChart(steps.lossByTime, shown) },
    { name: 'throughput', title: 'Training throughput over time (step log)', spec: throughputChart(steps.throughput, shown) },
  ];
}

/** The runs of the runs table (after --where) whose step log is read: all of them, or those in one status. */
function stepRuns(runs: Parameters<typeof applyWhere>[0], status?: string): Map<string, StepRun> {
  const out = new Map<string, StepRun>();
  for (const r of runs.objects() as (ConfigStats & { runId: string; status: string; seed: number })[]) {
    if (status === undefined || r.status === status) out.set(r.runId, { runId: r.runId, config: r.config, key: pickConfig(r), seed: r.seed });
  }
  return out;
}

/** The per-configuration table as exported: config id, key fields minus seed, statistics. */
function exportRows(stats: readonly ConfigStats[]): Record<string, unknown>[] {
  return stats.map((s) => {
    const { config, ...rest } = s;
    const row: Record<string, unknown> = { config };
    for (const f of CONFIG_FIELDS) row[f] = s[f];
    for (const [k, v] of Object.entries(rest)) if (!(k in row)) row[k] = v;
    return row;
  });
}

function writeExport(path: string, text: string): string {
  const full = resolve(path);
  try {
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, text);
  } catch (e) {
    throw new FedsliceError('FEDSLICE_ERR_WRITE', `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; check the path`);
  }
  return full;
}
