/**
 * Where a sweep's runs execute, behind one interface (as Flower puts aggregation behind its
 * Strategy): the sweep plans, locks, retries and summarises; an executor says how many runs go
 * at once, whether it can work here at all, how one attempt at a run goes, and how to stop.
 */
import type { StatusMessage } from '../core/wire/schema.ts';
import type { PlannedRun } from './grid.ts';
import type { NamedLog, RunLayout } from './run-layout.ts';
import type { ThreadBudget } from './thread-budget.ts';

/**
 * How an attempt ended. `storeError`: the results store could not be written (a full disk, ...):
 * the run stays resumable from its checkpoint, and the sweep must start no more runs.
 */
export type RunOutcome = { status: 'completed' } | { status: 'failed'; reason: string; storeError?: string } | { status: 'interrupted'; storeError?: string };

/** How many runs go at once: the pool starts a run when its cost fits in what is free. */
export interface Schedule {
  capacity: number;
  cost: (run: PlannedRun) => number;
  describe: string;
  /** Each role's compute threads, where the executor shares out this machine's cores. */
  threads?: ThreadBudget;
}

/** What an attempt tells the sweep while it runs. */
export interface RunHooks {
  onStatus(s: StatusMessage): void;
  /** Trainers present in the job, as the metaserver reports joins and leaves. */
  onTrainers(present: number): void;
  /** A line for every kind of output. */
  onEvent(line: string): void;
  /** A line only plain output prints; the live view shows the state instead. */
  onDetail(line: string): void;
  /** The run waits for the executor (e.g. "queued in slurm"); null once that wait is over. */
  onQueued(state: string | null): void;
}

/** One attempt at one run. */
export interface Attempt {
  run: PlannedRun;
  layout: RunLayout;
  metaserver: string;
  /** One token per run, the same for every attempt (the metaserver fixes a job's token at its first hello). */
  token: string;
  timeoutS: number; // 0 = none
  force: boolean;
  /** 1 for the first attempt. */
  number: number;
  /** When this attempt began: run records from before it belong to other attempts. */
  startedAt: string;
  signal: AbortSignal;
  hooks: RunHooks;
  threads?: ThreadBudget;
}

/** What an executor needs to start a run's roles ahead of its attempt (they wait to be started). */
export type WarmStart = Pick<Attempt, 'run' | 'layout' | 'metaserver' | 'token' | 'force' | 'threads'>;

export interface Executor {
  /** Throws one clear error when this executor cannot work here (e.g. no sbatch on PATH). */
  check(): void;
  /** Makes or checks the runs' data sets where the roles will read them, before any run starts. */
  prepare(pending: readonly PlannedRun[]): void;
  schedule(pending: readonly PlannedRun[]): Schedule;
  /** Runs the attempt to its end; writing its run record is the caller's job. */
  run(a: Attempt): Promise<RunOutcome>;
  /** The logs whose tails a failed attempt's record keeps. */
  logs(a: Attempt): NamedLog[];
  /** The line the sweep prints when it is stopped with `running` runs under way. */
  stopping(running: number): string;
  /**
   * Optional: starts the roles of the run likely to come next, held before they touch the store
   * or the metaserver, so its attempt starts them with a word instead of a spawn. A later `run`
   * of another run, or `cancel`, ends them unused. True when it started them.
   */
  warm?(next: WarmStart): Promise<boolean>;
  /** Ends whatever this executor still has running; the sweep calls it however it ends. */
  cancel(): Promise<void>;
}
