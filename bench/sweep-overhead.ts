/**
 * Orchestration overhead of a sweep: its wall time per run minus the time spent training,
 * merging and evaluating (from the round records), against the reference script's 15 s of fixed
 * sleeps per run. Runs the sweep (default: configs/smoke.json) into a fresh temporary results
 * directory with --parallel 1, so the runs' times add up to the wall time.
 *
 *   node --import tsx bench/sweep-overhead.ts [--config configs/smoke.json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ResultsStore } from '../core/results/store.ts';
import { FEDSLICE_BIN } from '../runner/processes.ts';

const REFERENCE_SLEEPS_S = 15; // 3 s + 5 s + 2 s per trainer (W = 2 shown), before any work

const { values } = parseArgs({ options: { config: { type: 'string', default: 'configs/smoke.json' } } });
const results = mkdtempSync(join(tmpdir(), 'fedslice-overhead-'));
const t0 = performance.now();
const r = spawnSync(process.execPath, [FEDSLICE_BIN, 'runner', 'sweep', '--config', values.config!, '--results', results, '--parallel', '1'], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, CI: 'true' },
});
const wall = (performance.now() - t0) / 1000;
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
const w = Math.max(...rows.map((x) => x[0].length));
console.log(`\nsweep overhead (${values.config}, --parallel 1, results in ${results})`);
for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
