/**
 * Orchestration overhead of a sweep: its wall time per run minus the time spent training,
 * merging and evaluating (from the round records), against the reference script's 15 s of fixed
 * sleeps per run. Runs the sweep (default: configs/smoke.json) into a fresh temporary results
 * directory with --parallel 1, so the runs' times add up to the wall time. Every process of the
 * sweep stamps its log lines (bench/stamp-stderr.mjs), and a second table gives the median of each
 * start-up and shut-down phase over the runs, read from the aggregator's and trainers' logs.
 *
 * The sweep runs once cold (--no-warm-start: every run's roles spawn when it starts) and once warm
 * (the default: the next run's roles start ahead, held, while the current run trains its last
 * round), alternating `--repeat` times (cold, warm, cold, warm, ...); the last table compares the
 * best of each. For a run started ahead "spawn" in the phase table is the moment it was told to go.
 *
 *   node --import tsx bench/sweep-overhead.ts [--config configs/smoke.json] [--repeat 1] [--modes cold,warm]
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

const { values } = parseArgs({
  options: { config: { type: 'string', default: 'configs/smoke.json' }, repeat: { type: 'string', default: '1' }, modes: { type: 'string', default: 'cold,warm' } },
});
const MODES = { cold: ['--no-warm-start'], warm: [] } as const;
type Mode = keyof typeof MODES;
const isMode = (m: string): m is Mode => Object.hasOwn(MODES, m);
const modes = values.modes!.split(',');
const badMode = modes.find((m) => !isMode(m));
if (badMode !== undefined) {
  console.error(`--modes takes cold and/or warm, not "${badMode}"`);
  process.exit(1);
}
const stampHook = pathToFileURL(join(import.meta.dirname, 'stamp-stderr.mjs')).href;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Measured {
  wallPerRun: number;
  overheadPerRun: number;
}

function measure(mode: Mode): Measured {
  const results = mkdtempSync(join(tmpdir(), `fedslice-overhead-${mode}-`));
  const loadBefore = loadavg()[0];
  const sweepStarted = Date.now();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [FEDSLICE_BIN, 'runner', 'sweep', '--config', values.config!, '--results', results, '--parallel', '1', ...MODES[mode]], {
    stdio: ['ignore', 'ignore', 'inherit'],
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
  const phaseRows: [string, string][] = PHASES.map((p) => {
    const xs = clocks.map(p.seconds).filter((x): x is number => x !== null);
    return [p.name, xs.length ? `${median(xs).toFixed(2)} s (${xs.length} runs)` : 'not in the logs'];
  });
  const spawns = clocks.map((c) => c.spawned).filter((x): x is number => x !== null);
  const exits = clocks.map((c) => c.exited).filter((x): x is number => x !== null);
  if (spawns.length) phaseRows.unshift(['sweep start -> first run spawned (once)', `${((Math.min(...spawns) - sweepStarted) / 1000).toFixed(2)} s`]);
  if (exits.length) phaseRows.push(['last aggregator exit -> sweep exit (once)', `${((sweepEnded - Math.max(...exits)) / 1000).toFixed(2)} s`]);
  const w = Math.max(...[...rows, ...phaseRows].map((x) => x[0].length));
  console.log(`\nsweep overhead, ${mode} (${values.config}, --parallel 1 ${MODES[mode].join(' ')}, results in ${results}; load average ${loadBefore.toFixed(2)} -> ${loadavg()[0].toFixed(2)})`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  console.log('\nwhere a run starts and ends (median over runs, from the stamped role logs)');
  for (const [k, v] of phaseRows) console.log(`  ${k.padEnd(w)}  ${v}`);
  return { wallPerRun: perRun(wall), overheadPerRun: overhead };
}

const best = new Map<Mode, Measured>();
for (let i = 0; i < Number(values.repeat); i++) {
  for (const mode of modes.filter(isMode)) {
    const m = measure(mode);
    const b = best.get(mode);
    if (!b || m.wallPerRun < b.wallPerRun) best.set(mode, m);
  }
}
const cold = best.get('cold');
const warm = best.get('warm');
if (cold && warm) {
  console.log(`\nwarm start against cold (best of ${values.repeat} each, alternating)`);
  console.log(`  sweep wall time per run         ${cold.wallPerRun.toFixed(2)} s -> ${warm.wallPerRun.toFixed(2)} s (${(warm.wallPerRun / cold.wallPerRun).toFixed(2)}x)`);
  console.log(`  orchestration overhead per run  ${cold.overheadPerRun.toFixed(2)} s -> ${warm.overheadPerRun.toFixed(2)} s (${(warm.overheadPerRun / cold.overheadPerRun).toFixed(2)}x)`);
}
