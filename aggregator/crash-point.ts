/**
 * Crash-consistency tests need a SIGKILL at an exact moment of a round, not after a guessed sleep:
 * with FEDSLICE_CRASH_AT=<moment>:<round> in its environment the aggregator kills itself with
 * SIGKILL when it reaches that moment of that round. Unset (always, outside tests) it does nothing.
 */
export type CrashMoment = 'checkpointed' | 'evaluating' | 'recorded';

const wanted = process.env.FEDSLICE_CRASH_AT;

export function crashPoint(moment: CrashMoment, round: number, log: (line: string) => void): void {
  if (wanted !== `${moment}:${round}`) return;
  log(`aggregator: FEDSLICE_CRASH_AT=${wanted}: killing this process`);
  process.kill(process.pid, 'SIGKILL');
}
