/**
 * How many compute threads each role of a local sweep may use: the cores divided by the trainers
 * computing at once, at least one each; the aggregators share what the trainers leave free (they
 * evaluate while the trainers train), at least one each. The runner passes each role its count in
 * FEDSLICE_WASM_THREADS; a role started by hand, alone, uses every core (core/compute/wasm-threads.ts).
 * An aggregator whose core the trainers already use runs at a low priority (nice 10,
 * core/role-priority.ts), so its evaluation beside training takes mostly the cycles they leave idle.
 */
import { MAX_WASM_THREADS } from '../core/compute/backend-names.ts';
import { YIELDING_NICE } from '../core/role-priority.ts';

export interface ThreadBudget {
  trainer: number;
  aggregator: number;
  /** The aggregators' nice value: 0 where the trainers leave each a core, else a low priority. */
  aggregatorNice: number;
  /** What the budget was made from, for the log. */
  cores: number;
  trainersAtOnce: number;
  runsAtOnce: number;
}

/** A run as the budget sees it: its trainers and what it costs the schedule. */
export interface BudgetedRun {
  trainers: number;
  cost: number;
}

/**
 * The budget for runs started under `capacity` (a run starts when its cost fits, a cost above the
 * capacity counts as the capacity). Trainers at once is the most the schedule can run together,
 * taking the widest runs first, so no moment of the sweep has more trainers than the budget assumed.
 */
export function threadBudget(cores: number, capacity: number, runs: readonly BudgetedRun[]): ThreadBudget {
  const widestFirst = [...runs].sort((a, b) => b.trainers - a.trainers);
  let free = capacity;
  let trainersAtOnce = 0;
  let runsAtOnce = 0;
  for (const r of widestFirst) {
    const cost = Math.max(1, Math.min(capacity, r.cost));
    if (cost > free) continue;
    free -= cost;
    trainersAtOnce += r.trainers;
    runsAtOnce++;
  }
  const share = (n: number) => Math.min(MAX_WASM_THREADS, Math.max(1, Math.floor(n)));
  const trainer = share(cores / Math.max(1, trainersAtOnce));
  const leftFree = cores - trainer * trainersAtOnce;
  const aggregator = share(leftFree / Math.max(1, runsAtOnce));
  const aggregatorNice = leftFree >= Math.max(1, runsAtOnce) ? 0 : YIELDING_NICE;
  return { trainer, aggregator, aggregatorNice, cores, trainersAtOnce, runsAtOnce };
}

export function describeBudget(b: ThreadBudget): string {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const nice = b.aggregatorNice > 0 ? ` at nice ${b.aggregatorNice}, yielding to the trainers` : '';
  return `${plural(b.trainer, 'thread')} per trainer and ${b.aggregator} per aggregator${nice} (${plural(b.cores, 'core')}, at most ${plural(b.trainersAtOnce, 'trainer')} at once)`;
}
