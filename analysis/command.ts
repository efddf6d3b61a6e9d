/**
 * Registers `fedslice analyze`. The analysis modules (arquero, vega) load only when the
 * command runs, so the other sub-commands start without them.
 */
import type { Command } from 'commander';
import { FedsliceError } from '../core/errors.ts';
import type { AnalyzeOptions } from './analyze.ts';

interface RawOptions {
  results: string;
  plots: boolean;
  out?: string;
  top: string;
  metric: string;
  where?: string;
  csv?: string;
  json?: string;
  stepsCsv?: string;
  stepsJson?: string;
}

export function register(program: Command): void {
  program
    .command('analyze')
    .description('tables and charts over the results store: per-configuration statistics, top runs, swap, timing, sync vs async')
    .option('--results <dir>', 'results store folder (runs.jsonl, rounds.jsonl)', 'results')
    .option('--no-plots', 'print the tables only; write no chart or report file')
    .option('--out <dir>', 'folder for the charts and report.html (default: <results>/report)')
    .option('--top <n>', 'how many configurations the top table shows', '5')
    .option('--metric <name>', 'best runs by any recorded metric (testAccuracy, testLoss, roundSeconds, stepP99Seconds, peakRssBytes, ...); accuracies and rates highest first, the rest lowest; name:max or name:min says which. The top configurations use testAccuracy or testLoss', 'testAccuracy')
    .option('--where <k=v,...>', 'keep runs whose key fields match, e.g. worldSize=2,swap=true or learningRate=1e-4|1e-3')
    .option('--csv <file>', 'also write the per-configuration table as CSV')
    .option('--json <file>', 'also write the per-configuration table as JSON')
    .option('--steps-csv <file>', 'also write the step log (steps.jsonl) of the runs analysed as CSV')
    .option('--steps-json <file>', 'also write the step log of the runs analysed as JSON')
    .addHelpText(
      'after',
      '\nStatistics use runs that reached their final round; std is the sample std over seeds (n-1), "-" when n = 1.\n' +
        'Charts: learning-curves, hyperparameters, scaling, time-breakdown, with async runs sync-vs-async and accuracy-over-time,\nwith a step log loss-by-step, loss-by-time and throughput (.vl.json, .svg, .png), plus report.html.',
    )
    .action(async (raw: RawOptions) => {
      const opts = await parseOptions(raw);
      const { runAnalyze } = await import('./analyze.ts');
      await runAnalyze(opts);
    });
}

export async function parseOptions(raw: RawOptions): Promise<AnalyzeOptions> {
  const top = Number(raw.top);
  if (!Number.isInteger(top) || top < 1) {
    throw new FedsliceError('FEDSLICE_ERR_OPTION', `--top must be a positive whole number, got "${raw.top}"`);
  }
  const { parseMetric } = await import('./best.ts');
  parseMetric(raw.metric);
  const { parseWhere } = await import('./where.ts');
  return {
    results: raw.results,
    plots: raw.plots,
    out: raw.out,
    top,
    metric: raw.metric,
    where: raw.where ? parseWhere(raw.where) : [],
    csv: raw.csv,
    json: raw.json,
    stepsCsv: raw.stepsCsv,
    stepsJson: raw.stepsJson,
  };
}
