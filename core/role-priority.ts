/**
 * A role's CPU priority. The sweep runner starts an aggregator at a lower priority (a higher nice
 * value) when its trainers take every core (runner/thread-budget.ts): it then evaluates the previous
 * round while they train mostly in the cycles they leave idle, instead of taking a core from a
 * trainer that uses both. Nothing else of the aggregator's work competes with training, so nothing waits
 * longer for it. Setting FEDSLICE_AGGREGATOR_NICE for the sweep fixes the value (0: the priority of
 * the runner).
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { FedsliceError } from './errors.ts';

export const AGGREGATOR_NICE_ENV = 'FEDSLICE_AGGREGATOR_NICE';
/**
 * The nice value of an aggregator whose core is a trainer's: about a tenth of a core against a busy
 * trainer thread, not the lowest priority (19, about 1/70), so an evaluation batch on a machine with
 * no idle cycle still ends within seconds and its event loop answers the metaserver's pings (three
 * missed, 15 s, drop a peer). Beside a 2-thread trainer both cut the trainer's slowdown alike.
 */
export const YIELDING_NICE = 10;

/** The nice value asked in `env` (0 when unset); a bad value is one clear error. */
export function niceOf(env: NodeJS.ProcessEnv, name: string): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 19) throw new FedsliceError('FEDSLICE_ERR_OPTION', `${name} must be a whole number from 0 to 19 (a nice value), got '${raw}'`);
  return n;
}

/**
 * Lowers this process's priority to `nice`. On Linux a nice value belongs to each thread, so every
 * thread running now is set (threads started later inherit the value); elsewhere the process is.
 */
export function lowerPriority(nice: number): void {
  if (nice <= 0) return;
  let threads: number[] = [];
  try {
    threads = readdirSync('/proc/self/task').map(Number);
  } catch {
    // no /proc: the platform's process-wide call below
  }
  if (threads.length === 0) setPriority(nice);
  for (const tid of threads) {
    try {
      setPriority(tid, nice);
    } catch {
      // a thread that ended meanwhile
    }
  }
}
