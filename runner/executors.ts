/**
 * The executors `--executor` names, each loaded only when chosen. A new place for runs to
 * execute is one entry here and a class behind the Executor interface.
 */
import type { Executor } from './executor.ts';

export interface ExecutorOptions {
  /** `--parallel N`: at most N runs at a time. */
  parallel?: number;
  /** `--slurm-args`: extra sbatch options for every job. */
  slurmArgs: string[];
  /** `--metaserver-host`: the interface the sweep's metaserver binds. */
  metaserverHost: string;
  /** `--no-warm-start` makes it false: every run's roles start when the run does. */
  warmStart: boolean;
}

const EXECUTORS = {
  /** Child processes of the sweep on this machine. */
  local: async (o: ExecutorOptions): Promise<Executor> => new (await import('./local-executor.ts')).LocalExecutor(o.parallel, o.warmStart),
  /** One Slurm job per run. */
  slurm: async (o: ExecutorOptions): Promise<Executor> => new (await import('./slurm-executor.ts')).SlurmExecutor(o),
};

export type ExecutorName = keyof typeof EXECUTORS;

export const isExecutorName = (v: string): v is ExecutorName => Object.hasOwn(EXECUTORS, v);
export const EXECUTOR_NAMES: ExecutorName[] = Object.keys(EXECUTORS).filter(isExecutorName);

export function createExecutor(name: ExecutorName, o: ExecutorOptions): Promise<Executor> {
  return EXECUTORS[name](o);
}
