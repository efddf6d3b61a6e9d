/**
 * The command lines and environment of a run's roles, built here for every executor: the local
 * one spawns them, the Slurm one writes them into the batch script. A setting every role process
 * needs belongs here, so both executors pass it on.
 */
import { THREADS_ENV } from '../core/compute/backend-names.ts';
import { AGGREGATOR_NICE_ENV } from '../core/role-priority.ts';
import type { PlannedRun } from './grid.ts';
import type { ThreadBudget } from './thread-budget.ts';

export interface LaunchOptions {
  run: PlannedRun;
  configFile: string;
  results: string;
  metaserver: string;
  force: boolean;
  /** How roles get the job's token: in their environment, or from a file (never in a batch script). */
  token: { value: string } | { file: string };
  /** Each role's compute threads; absent, every role uses every core it sees. */
  threads?: ThreadBudget;
}

export interface Launch {
  /** fedslice arguments of the aggregator. */
  aggregator: string[];
  /** fedslice arguments of every trainer, before its own `trainerSlot`. */
  trainer: string[];
  /** Added to the environment of every role. */
  env: Record<string, string>;
  /** Added to the aggregator's environment, and to every trainer's: their thread counts (and the aggregator's priority). */
  roleEnv: { aggregator: Record<string, string>; trainer: Record<string, string> };
}

export function launchOf(o: LaunchOptions): Launch {
  const tokenArgs = 'file' in o.token ? ['--token-file', o.token.file] : [];
  const common = ['--config', o.configFile, '--metaserver', o.metaserver, '--job', o.run.key, ...tokenArgs];
  return {
    aggregator: ['aggregator', ...common, '--results', o.results, '--resume', ...(o.force ? ['--force'] : [])],
    trainer: ['trainer', ...common],
    env: 'value' in o.token ? { FEDSLICE_TOKEN: o.token.value } : {},
    roleEnv: o.threads
      ? {
          aggregator: { [THREADS_ENV]: String(o.threads.aggregator), ...(o.threads.aggregatorNice > 0 ? { [AGGREGATOR_NICE_ENV]: String(o.threads.aggregatorNice) } : {}) },
          trainer: { [THREADS_ENV]: String(o.threads.trainer) },
        }
      : { aggregator: {}, trainer: {} },
  };
}

/** A trainer's id is the run key, "-t", and its shard. */
export const trainerIdPrefix = (key: string): string => `${key}-t`;

export const trainerSlot = (key: string, shard: number): string[] => ['--id', `${trainerIdPrefix(key)}${shard}`, '--shard', String(shard)];
