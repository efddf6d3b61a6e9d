/**
 * Where a sweep's files go, named here only. Per run, <results>/logs/<key>/ (core/results/profile.ts
 * names it: the aggregator writes the run's profile.json there) holds its config and one log per
 * role (aggregator.log, trainer-<k>.log, and slurm.log for a Slurm job);
 * <results>/slurm/ holds each Slurm job's batch script and token file; the sweep's metaserver
 * logs to <results>/logs/metaserver.log. Paths are absolute: a Slurm job may start elsewhere.
 */
import { join, resolve } from 'node:path';
import { logsDir, runLogDir } from '../core/results/profile.ts';

export { logsDir };

/** A log file and the name its lines get in a run record's log tail. */
export interface NamedLog {
  name: string;
  logFile: string;
}

export interface RunLayout {
  results: string;
  /** <results>/logs/<key>/ */
  dir: string;
  configFile: string;
  aggregatorLog: string;
  trainerLog(shard: number): string;
  /** The Slurm job's own output (its batch script's lines and Slurm's complaints). */
  slurmLog: string;
  slurmScript: string;
  tokenFile: string;
}

export const metaserverLog = (results: string): string => join(logsDir(results), 'metaserver.log');

export const aggregatorLogIn = (dir: string): string => join(dir, 'aggregator.log');
/** `shard` may also be srun's `%t`, which srun replaces with the task number. */
export const trainerLogIn = (dir: string, shard: number | string): string => join(dir, `trainer-${shard}.log`);

export function runLayout(results: string, key: string): RunLayout {
  const abs = resolve(results);
  const dir = runLogDir(abs, key);
  const slurmDir = join(abs, 'slurm');
  return {
    results: abs,
    dir,
    configFile: join(dir, 'config.json'),
    aggregatorLog: aggregatorLogIn(dir),
    trainerLog: (shard) => trainerLogIn(dir, shard),
    slurmLog: join(dir, 'slurm.log'),
    slurmScript: join(slurmDir, `${key}.sh`),
    tokenFile: join(slurmDir, `${key}.token`),
  };
}

/** The aggregator's and every trainer's log, in that order. */
export function roleLogs(l: RunLayout, worldSize: number): NamedLog[] {
  return [
    { name: 'aggregator', logFile: l.aggregatorLog },
    ...Array.from({ length: worldSize }, (_, i) => ({ name: `trainer ${i}`, logFile: l.trainerLog(i) })),
  ];
}
