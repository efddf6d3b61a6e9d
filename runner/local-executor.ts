/**
 * Runs as child processes of the sweep: a run's aggregator and trainers, each in its own process
 * group writing its own log. An attempt ends when the aggregator exits, when too many trainers
 * crash for the run to go on, at its --timeout, or when the sweep is stopped; every role is
 * ended before the attempt returns. Never by sleeping.
 */
import { availableParallelism } from 'node:os';
import { THREADS_ENV } from '../core/compute/backend-names.ts';
import { minTrainersOf } from '../core/config.ts';
import { prepareDatasets } from '../core/data/load.ts';
import { STORAGE_EXIT_CODE } from '../core/results/storage-error.ts';
import { attemptFailure } from './attempt-record.ts';
import { firstEnd, timedOut, type EndCause } from './attempt-end.ts';
import { writeRunConfig } from './attempt.ts';
import type { Attempt, Executor, RunOutcome, Schedule, WarmStart } from './executor.ts';
import type { PlannedRun } from './grid.ts';
import { launchOf, trainerSlot } from './launch.ts';
import { endAll, endRole, spawnRole, tail, type RoleProcess } from './processes.ts';
import { roleLogs, type NamedLog } from './run-layout.ts';
import { threadBudget } from './thread-budget.ts';
import { AGGREGATOR_NICE_ENV } from '../core/role-priority.ts';

/**
 * How many runs go at once: `--parallel N` runs, or by default as many as fit the cores (one core
 * per trainer: the aggregator mostly waits while they train). The cores are then shared out among
 * the roles (runner/thread-budget.ts), unless FEDSLICE_WASM_THREADS, set for the sweep, fixes
 * every role's threads. FEDSLICE_AGGREGATOR_NICE, set for the sweep, fixes the aggregators' priority.
 */
export function scheduleFor(parallel: number | undefined, pending: readonly PlannedRun[], cores = availableParallelism(), env = process.env): Schedule {
  const schedule: Schedule =
    parallel !== undefined
      ? { capacity: parallel, cost: () => 1, describe: `${parallel} at a time` }
      : { capacity: cores, cost: (r) => r.config.federation.worldSize, describe: `as many at a time as fit ${cores} cores (one per trainer; --parallel N overrides)` };
  if (env[THREADS_ENV] !== undefined) return { ...schedule, describe: `${schedule.describe}, ${THREADS_ENV}=${env[THREADS_ENV]} for every role` };
  const runs = pending.map((r) => ({ trainers: r.config.federation.worldSize, cost: schedule.cost(r) }));
  const budget = threadBudget(cores, schedule.capacity, runs);
  // the aggregators inherit the sweep's own value
  return { ...schedule, threads: env[AGGREGATOR_NICE_ENV] === undefined ? budget : { ...budget, aggregatorNice: 0 } };
}

/** Whether a run that lost `crashed` of its `worldSize` trainers can no longer reach its quorum. */
export const belowQuorum = (worldSize: number, crashed: number, minTrainers: number): boolean => worldSize - crashed < minTrainers;

/** How long a trainer's exit waits for the aggregator's own before it counts as a crash. */
const AGGREGATOR_EXIT_GRACE_MS = 3000;

interface Roles {
  aggregator: RoleProcess;
  trainers: RoleProcess[];
}

/** What ended the watch: the aggregator's exit, or a trainer crash the run cannot survive. */
type RolesEnd = { by: 'aggregator' } | { by: 'trainers'; reason: string };

export class LocalExecutor implements Executor {
  /** The roles of the run expected next, started ahead and held (see `warm`). */
  private spare: { key: string; roles: Roles } | null = null;

  /** `warmStart`: start the next run's roles ahead of it (`runner sweep --no-warm-start` turns it off). */
  constructor(
    private readonly parallel?: number,
    private readonly warmStart = true,
  ) {}

  check(): void {}

  /** Once here, so that roles started at once do not each generate the same synthetic set. */
  prepare(pending: readonly PlannedRun[]): void {
    prepareDatasets(pending.map((r) => r.config.dataset));
  }

  schedule(pending: readonly PlannedRun[]): Schedule {
    return scheduleFor(this.parallel, pending);
  }

  logs(a: Pick<Attempt, 'layout' | 'run'>): NamedLog[] {
    return roleLogs(a.layout, a.run.config.federation.worldSize);
  }

  stopping(running: number): string {
    return `stop: ending ${running} running runs (they resume next time); Ctrl-C again to kill them at once`;
  }

  cancel(): Promise<void> {
    this.spare = null;
    return endAll(); // the spare's roles with the rest
  }

  /**
   * Node, the modules, the config and the backend of a role take about a second of start-up on the
   * critical path of every run; a spare does them while the previous run finishes. One spare set
   * at a time; a spare that cannot start leaves its run to start as usual.
   */
  async warm(next: WarmStart): Promise<boolean> {
    if (!this.warmStart || this.spare) return false;
    try {
      writeRunConfig(next);
      this.spare = { key: next.run.key, roles: await this.spawnRoles(next, true) };
      return true;
    } catch {
      return false; // a head start only: its attempt starts the roles itself (and reports what stops it)
    }
  }

  async run(a: Attempt): Promise<RunOutcome> {
    const roles = (await this.takeSpare(a)) ?? (await this.spawnRoles(a, false));
    const end = await firstEnd<RolesEnd>(a, (report) => watchRoles(a, roles, report));
    const outcome = await outcomeOf(a, end, roles);
    await Promise.all([roles.aggregator, ...roles.trainers].map((p) => endRole(p)));
    return outcome;
  }

  /** The spare's roles, started, when they are this run's and all still there; otherwise the spare is ended. */
  private async takeSpare(a: Attempt): Promise<Roles | null> {
    const spare = this.spare;
    this.spare = null;
    if (!spare) return null;
    const all = [spare.roles.aggregator, ...spare.roles.trainers];
    if (spare.key === a.run.key && all.every((p) => p.running())) {
      // one that dies between the check and its go is a crash at start, watched like any other
      for (const p of all) p.go();
      return spare.roles;
    }
    await Promise.all(all.map((p) => endRole(p)));
    return null;
  }

  private async spawnRoles(a: WarmStart, held: boolean): Promise<Roles> {
    const launch = launchOf({ run: a.run, configFile: a.layout.configFile, results: a.layout.results, metaserver: a.metaserver, force: a.force, token: { value: a.token }, ...(a.threads ? { threads: a.threads } : {}) });
    const [aggregator, ...trainers] = this.logs(a);
    const started: RoleProcess[] = [];
    try {
      // A log that cannot be opened (too many open files) stops the attempt; what started is ended.
      started.push(spawnRole(aggregator.name, launch.aggregator, { ...launch.env, ...launch.roleEnv.aggregator }, aggregator.logFile, { held }));
      const trainerEnv = { ...launch.env, ...launch.roleEnv.trainer };
      trainers.forEach((t, i) => started.push(spawnRole(t.name, [...launch.trainer, ...trainerSlot(a.run.key, i)], trainerEnv, t.logFile, { held })));
    } catch (e) {
      await Promise.all(started.map((p) => endRole(p)));
      throw e;
    }
    return { aggregator: started[0], trainers: started.slice(1) };
  }
}

/** Reports the aggregator's exit, or the trainer crash that leaves too few trainers; returns how to stop. */
function watchRoles(a: Attempt, { aggregator, trainers }: Roles, report: (end: RolesEnd) => void): () => void {
  let watching = true;
  let crashed = 0;
  const minTrainers = minTrainersOf(a.run.config);
  void aggregator.exited.then(() => report({ by: 'aggregator' }));
  // Exits we caused are not news, nor are trainers leaving a run the aggregator ended: a trainer
  // told the run failed exits just before the aggregator, whose exit then says why (and whether
  // the store can be written). So a trainer's exit is a crash only if the aggregator outlives it
  // by a moment.
  const ended = () => !watching || !aggregator.running();
  trainers.forEach((t, i) =>
    t.exited.then(async ({ code, signal }) => {
      if (code === 0 || ended()) return;
      await Promise.race([aggregator.exited, new Promise((r) => setTimeout(r, AGGREGATOR_EXIT_GRACE_MS).unref())]);
      if (ended()) return;
      crashed++;
      a.hooks.onEvent(`exit  ${a.run.key}: trainer ${i} exited with ${code ?? signal}`);
      if (!belowQuorum(trainers.length, crashed, minTrainers)) return;
      const last = tail(t.logFile, 1)[0] ?? '';
      report({ by: 'trainers', reason: `trainer ${i} exited with ${code !== null ? `code ${code}` : signal}${last ? `: ${last}` : ''}` });
    }),
  );
  return () => {
    watching = false;
  };
}

async function outcomeOf(a: Attempt, end: EndCause<RolesEnd>, { aggregator, trainers }: Roles): Promise<RunOutcome> {
  if (end.by === 'timeout') return { status: 'failed', reason: timedOut(a.timeoutS) };
  if (end.by === 'abort') return { status: 'interrupted' };
  if (end.value.by === 'trainers') return { status: 'failed', reason: end.value.reason };
  const { code, signal } = await aggregator.exited;
  // Trainers leave on their own once told the run is done; a short grace, then they are ended.
  await Promise.race([Promise.all(trainers.map((t) => t.exited)), new Promise((r) => setTimeout(r, 10_000).unref())]);
  if (code === 0) return { status: 'completed' };
  if (code === STORAGE_EXIT_CODE) {
    // Its own log may be on the full disk: its run record or a generic line says why.
    const storeError = attemptFailure(a) ?? `the aggregator could not write the results store at ${a.layout.results}: free space or fix its permissions and rerun the same command to resume`;
    return { status: 'failed', reason: storeError, storeError };
  }
  if (a.signal.aborted) return { status: 'interrupted' };
  return { status: 'failed', reason: attemptFailure(a) ?? `aggregator exited with ${code ?? signal}` };
}
