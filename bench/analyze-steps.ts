/**
 * How long `fedslice analyze` takes over a store with a large step log (the goal: 1,000,000 step
 * lines in under 10 s).
 *
 *   node --import tsx bench/analyze-steps.ts [--lines 1000000] [--runs 16] [--plots] [--keep DIR]
 *
 * Writes a store of --runs completed runs (W 1 and 2, several seeds, 2 rounds each) whose
 * steps.jsonl holds --lines points in all, into a temporary folder, then times, in one run:
 * - the baseline: reading steps.jsonl line by line and JSON-parsing every line (no analysis);
 * - the step-log tables alone (stepTables);
 * - the whole analysis without charts, and with --plots also with charts and report.html.
 * Each figure is printed in seconds and as a ratio to the baseline.
 */
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runAnalyze } from '../analysis/analyze.ts';
import { type StepRun, stepTables } from '../analysis/steps.ts';
import { configId, runKey, runKeyFields } from '../core/results/schema.ts';
import { parseExperiment } from '../core/config.ts';
import { scanJsonLines } from '../core/results/jsonl-scan.ts';
import { ResultsStore, STEPS_FILE } from '../core/results/store.ts';
import type { RoundRecord, StepRecord } from '../core/results/types.ts';

function writeStore(dir: string, lines: number, runs: number): Map<string, StepRun> {
  const store = new ResultsStore(dir);
  store.ensureDir();
  const fd = openSync(join(dir, STEPS_FILE), 'w');
  const kept = new Map<string, StepRun>();
  const perRun = Math.ceil(lines / runs);
  let written = 0;
  const environment = { backend: 'wasm', node: process.version, tfjs: '4.22.0', fedslice: 'bench', host: 'bench', platform: 'linux' };
  for (let k = 0; k < runs && written < lines; k++) {
    const worldSize = 1 + (k % 2);
    const config = parseExperiment({ name: 'bench', federation: { worldSize, rounds: 2 }, model: { width: 0.125, numClasses: 10 }, seed: k });
    const keyFields = runKeyFields(config);
    const runId = `${runKey(config)}-bench`;
    const started = new Date(0).toISOString();
    store.appendRun({ kind: 'run', runId, key: runKey(config), keyFields, status: 'started', config, startedAt: started, environment });
    for (const round of [0, 1, 2]) {
      const r: RoundRecord = {
        kind: 'round', runId, ...keyFields, round, testLoss: 2, testAccuracy: 0.1 * round, trainLoss: round ? 2 : null, roundSeconds: 1, trainSeconds: 1,
        transferSeconds: 0, mergeSeconds: 0, evalSeconds: 0, bytesSent: 0, bytesReceived: 0, samplesPerSecond: 100, trainersReporting: worldSize, time: started,
      };
      store.appendRound(r);
    }
    store.appendRun({ kind: 'run', runId, key: runKey(config), keyFields, status: 'completed', config, startedAt: started, endedAt: started, wallSeconds: 1, environment });
    kept.set(runId, { runId, config: configId(keyFields), key: keyFields, seed: k });
    const n = Math.min(perRun, lines - written);
    const perSlot = Math.ceil(n / worldSize);
    const chunk: string[] = [];
    for (let i = 0; i < n; i++) {
      const slot = i % worldSize;
      const step = 1 + Math.floor(i / worldSize);
      const line: StepRecord = {
        kind: 'step', runId, slot, round: step <= perSlot / 2 ? 1 : 2, globalStep: step, epoch: 0, loss: 2.3 / (1 + step / perSlot) + 0.01 * Math.sin(i),
        intervalSteps: 1, samples: 32, samplesPerSecond: 120 + 10 * Math.sin(i / 7), learningRate: 1e-3, time: new Date(step * 250).toISOString(), elapsedSeconds: step * 0.25,
      };
      chunk.push(JSON.stringify(line));
      if (chunk.length === 10_000) writeSync(fd, chunk.splice(0).join('\n') + '\n');
    }
    if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
    written += n;
  }
  closeSync(fd);
  return kept;
}

async function time<T>(f: () => T | Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await f();
  return [(performance.now() - t0) / 1000, v];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { lines: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '16' }, plots: { type: 'boolean', default: false }, keep: { type: 'string' } } });
  const lines = Number(values.lines);
  const runs = Number(values.runs);
  const dir = values.keep ?? mkdtempSync(join(tmpdir(), 'fedslice-bench-steps-'));
  try {
    const [writeS, kept] = await time(() => writeStore(dir, lines, runs));
    const mb = statSync(join(dir, STEPS_FILE)).size / 1e6;
    console.log(`store: ${lines} step lines (${mb.toFixed(0)} MB) of ${runs} runs, written in ${writeS.toFixed(1)} s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const [baseS] = await time(() => scanJsonLines(join(dir, STEPS_FILE), () => {}));
    const [tablesS, t] = await time(() => stepTables(dir, kept));
    const quiet = { out: () => {}, warn: () => {} };
    const opts = { results: dir, plots: false, top: 5, metric: 'testAccuracy' as const, where: [] };
    const [noPlotsS] = await time(() => runAnalyze(opts, quiet));
    const rows: [string, number][] = [
      ['read + JSON.parse every line (baseline)', baseS],
      [`step-log tables (${t.lossByStep.length + t.lossByTime.length + t.throughput.length} curve points)`, tablesS],
      ['fedslice analyze --no-plots', noPlotsS],
    ];
    if (values.plots) rows.push(['fedslice analyze (charts and report.html)', (await time(() => runAnalyze({ ...opts, plots: true }, quiet)))[0]]);
    console.log('\n| what | seconds | ratio to baseline |\n|---|---:|---:|');
    for (const [what, s] of rows) console.log(`| ${what} | ${s.toFixed(2)} | ${(s / baseS).toFixed(2)} |`);
  } finally {
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
