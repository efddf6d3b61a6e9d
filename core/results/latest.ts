/**
 * Which record counts when the store holds several: the store is append-only, so a run writes
 * 'started' and then its end state, and a resumed run writes a round again. The last write wins.
 */
import type { RoundRecord, RunRecord } from './types.ts';

/** The latest record of each run id, in the order the runs first appear (the order they started). */
export function latestByRun(records: Iterable<RunRecord>): Map<string, RunRecord> {
  const latest = new Map<string, RunRecord>();
  for (const r of records) latest.set(r.runId, r);
  return latest;
}

/**
 * The latest record of the newest run of this key that `where` accepts (e.g. completed, or
 * started since this attempt began); undefined when there is none.
 */
export function latestOfKey(latestRuns: Iterable<RunRecord>, key: string, where: (r: RunRecord) => boolean = () => true): RunRecord | undefined {
  let found: RunRecord | undefined;
  for (const r of latestRuns) if (r.key === key && where(r)) found = r;
  return found;
}

/**
 * The last record of each (run id, round), in the order of those last writes, and how many
 * records were superseded by a later write of the same round.
 */
export function latestRounds(records: Iterable<RoundRecord>): { records: RoundRecord[]; rewritten: number } {
  const latest = new Map<string, RoundRecord>();
  let rewritten = 0;
  for (const r of records) {
    const k = `${r.runId}\u0000${r.round}`;
    if (latest.has(k)) {
      rewritten++;
      latest.delete(k); // re-insert so the map keeps the order of the last writes
    }
    latest.set(k, r);
  }
  return { records: [...latest.values()], rewritten };
}
