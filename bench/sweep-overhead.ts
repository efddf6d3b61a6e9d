/**
 * Orchestration overhead of a sweep: its wall time per run minus the time spent training,
 * merging and evaluating (from the round records), against the reference script's 15 s of fixed
 * sleeps per run. Runs the sweep (default: configs/smoke.json) into a fresh temporary results
 * directory with --parallel 1, so the runs' times add up to the wall time. Every process of the
 * sweep stamps its log lines (bench/stamp-stderr.mjs), and a second table gives the median of each
 * start-up and shut-down phase over the runs, read from the aggregator's and trainers' logs.
 *
 *   node --import tsx bench/sweep-overhead.ts [--config configs/smoke.json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ResultsStore } from '../core/results/store.ts';
import { FEDSLICE_BIN } from '../runner/processes.ts';
import { logsDir } from '../runner/run-layout.ts';
import { roleClocks, PHASES } from './sweep-phases.ts';

const REFERENCE_SLEEPS_S = 15; // 3 s + 5 s + 2 s per trainer (W = 2 shown), before any work

const { values } = parseArgs({ options: { config: { type: 'string', default: 'configs/smoke.json' } } });
const results = mkdtempSync(join(tmpdir(), 'fedslice-overhead-'));
const stampHook = pathToFileURL(join(import.meta.dirname, 'stamp-stderr.mjs')).href;
const loadBefore = loadavg()[0];
const sweepStarted = Date.now();
const t0 = performance.now();
const r = spawnSync(process.execPath, [FEDSLICE_BIN, 'runner', 'sweep', '--config', values.config!, '--results', results, '--parallel', '1'], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, CI: 'true', NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${stampHook}`.trim() },
});
const wall = (performance.now() - t0) / 1000;
const sweepEnded = Date.now();
if (r.status !== 0) {
  console.error(`sweep exited with ${r.status}; see ${results}/logs`);
  process.exit(1);
}
const store = new ResultsStore(results);
const rounds = store.readRounds().records;
const completed = store.readRuns().records.filter((x) => x.status === 'completed');
const runs = completed.length;
// Evaluation that overlapped the next round's training already lies inside that round's training.
const work = rounds.reduce((s, x) => s + x.trainSeconds + x.mergeSeconds + x.evalSeconds - (x.evalOverlapSeconds ?? 0), 0);
const transfer = rounds.reduce((s, x) => s + x.transferSeconds, 0);
// The aggregator's own wall time starts once its backend and data are loaded.
const aggregatorWall = completed.reduce((s, x) => s + (x.wallSeconds ?? 0), 0);
const perRun = (x: number) => x / runs;
const overhead = perRun(wall - work);
const rows: [string, string][] = [
  ['runs', String(runs)],
  ['sweep wall time per run', `${perRun(wall).toFixed(2)} s`],
  ['training + merge + evaluation per run', `${perRun(work).toFixed(2)} s`],
  ['orchestration overhead per run', `${overhead.toFixed(2)} s`],
  ['  start-up: processes, backend, data, exit', `${perRun(wall - aggregatorWall).toFixed(2)} s`],
  ['  in the run: joins, transfer, checkpoints', `${perRun(aggregatorWall - work).toFixed(2)} s (transfer ${perRun(transfer).toFixed(2)} s)`],
  ['reference fixed sleeps per run', `${REFERENCE_SLEEPS_S.toFixed(2)} s (before its own start-up)`],
  ['overhead / reference sleeps', `${(overhead / REFERENCE_SLEEPS_S).toFixed(2)}x`],
];
const clocks = roleClocks(logsDir(results), completed.map((x) => x.key));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const phaseRows: [string, string][] = PHASES.map((p) => {
  const xs = clocks.map(p.seconds).filter((x): x is number => x !== null);
  return [p.name, xs.length ? `${median(xs).toFixed(2)} s (${xs.length} runs)` : 'not in the logs'];
});
const spawns = clocks.map((c) => c.spawned).filter((x): x is number => x !== null);
const exits = clocks.map((c) => c.exited).filter((x): x is number => x !== null);
if (spawns.length) phaseRows.unshift(['sweep start -> first run spawned (once)', `${((Math.min(...spawns) - sweepStarted) / 1000).toFixed(2)} s`]);
if (exits.length) phaseRows.push(['last aggregator exit -> sweep exit (once)', `${((sweepEnded - Math.max(...exits)) / 1000).toFixed(2)} s`]);
const w = Math.max(...[...rows, ...phaseRows].map((x) => x[0].length));
console.log(`\nsweep overhead (${values.config}, --parallel 1, results in ${results}; load average ${loadBefore.toFixed(2)} -> ${loadavg()[0].toFixed(2)})`);
for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
console.log('\nwhere a run starts and ends (median over runs, from the stamped role logs)');
for (const [k, v] of phaseRows) console.log(`  ${k.padEnd(w)}  ${v}`);
