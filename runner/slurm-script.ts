/**
 * The batch script of one run on Slurm: two job steps inside one allocation of 1 + W tasks,
 * placed by srun: the aggregator (one task) and the W trainers (task k asks for shard k). The
 * job's exit status is the aggregator's; trainers leave on their own when it ends the run.
 */
import type { PlannedRun } from './grid.ts';
import { launchOf, trainerIdPrefix } from './launch.ts';
import { aggregatorLogIn, trainerLogIn } from './run-layout.ts';

export interface ScriptOptions {
  run: PlannedRun;
  node: string; // the node.js binary, at the same path on the compute nodes (shared filesystem)
  bin: string; // bin/fedslice.js
  configFile: string;
  results: string;
  logDir: string;
  metaserver: string;
  tokenFile: string;
  /** Address the aggregator binds and trainers dial: loopback on a one-node cluster, else the node's hostname. */
  aggregatorHost: 'loopback' | 'hostname';
  force: boolean;
}

/** Single-quoted for bash: safe for any path. */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function gpusPerTrainer(run: PlannedRun): number {
  return run.config.backend === 'tensorflow-gpu' ? 1 : 0;
}

/** sbatch options of a run: its name, tasks, GPUs and log; the user's --slurm-args come after and win. */
export function sbatchArgs(run: PlannedRun, slurmLog: string, userArgs: string[]): string[] {
  const W = run.config.federation.worldSize;
  const gpus = gpusPerTrainer(run);
  return [
    `--job-name=fedslice-${run.key}`,
    `--ntasks=${1 + W}`,
    ...(gpus ? [`--gpus=${W * gpus}`] : []),
    `--output=${slurmLog}`,
    '--open-mode=append',
    ...userArgs,
  ];
}

export function batchScript(o: ScriptOptions): string {
  const { run } = o;
  const W = run.config.federation.worldSize;
  const gpus = gpusPerTrainer(run);
  const launch = launchOf({ run, configFile: o.configFile, results: o.results, metaserver: o.metaserver, force: o.force, token: { file: o.tokenFile } });
  const args = (a: string[]) => a.map(shq).join(' ');
  const exports = Object.entries(launch.env).map(([k, v]) => `export ${k}=${shq(v)}\n`).join('');
  const host = o.aggregatorHost === 'loopback' ? '127.0.0.1' : '"$(hostname)"';
  return `#!/bin/bash
# fedslice run ${run.key}: written by \`fedslice runner sweep --executor slurm\`; submitted with sbatch.
set -u
${exports}NODE=${shq(o.node)}
FEDSLICE=${shq(o.bin)}
echo "# $(date -u +%FT%TZ) slurm job $SLURM_JOB_ID on $(hostname): aggregator + ${W} trainer(s)"
srun --ntasks=1 --exact --open-mode=append --output=${shq(aggregatorLogIn(o.logDir))} \\
  "$NODE" "$FEDSLICE" ${args(launch.aggregator)} --host ${host} &
agg=$!
srun --ntasks=${W} --exact${gpus ? ` --gpus-per-task=${gpus}` : ''} --open-mode=append --output=${shq(trainerLogIn(o.logDir, '%t'))} \\
  bash -c 'exec "$@" --id "$0$SLURM_PROCID" --shard "$SLURM_PROCID"' ${shq(trainerIdPrefix(run.key))} "$NODE" "$FEDSLICE" ${args(launch.trainer)} &
trainers=$!
wait "$agg"
code=$?
# Trainers leave by themselves once the aggregator has ended the run; a grace, then they are stopped.
for _ in $(seq 10); do kill -0 "$trainers" 2>/dev/null || break; sleep 1; done
kill "$trainers" 2>/dev/null
wait "$trainers"
exit "$code"
`;
}
