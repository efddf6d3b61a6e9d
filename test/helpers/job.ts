/** One experiment run end to end with the real CLI roles: an aggregator and its trainers. */
import { join } from 'node:path';
import { parseExperiment } from '../../core/config.ts';
import type { RoundRecord, RunRecord } from '../../core/results/types.ts';
import { jsonl, startRole } from './roles.ts';
import { testConfig, writeConfig, type TestConfigOptions } from './experiment.ts';

export interface JobPlace {
  dir: string;
  dataDir: string;
  metaUrl: string;
}

/** Runs the job to its end and returns its exit codes and records; `pinShards` gives trainer i shard i. */
export async function runJob(at: JobPlace, name: string, o: Omit<TestConfigOptions, 'dataDir' | 'name'>, pinShards = false) {
  const cfg = writeConfig(at.dir, `${name}.json`, { ...o, dataDir: at.dataDir, name });
  const results = join(at.dir, `results-${name}`);
  const env = { FEDSLICE_TOKEN: `token-${name}` };
  const agg = startRole('aggregator', ['aggregator', '--config', cfg, '--metaserver', at.metaUrl, '--results', results], env);
  const trainers = Array.from({ length: o.worldSize ?? 2 }, (_, i) =>
    startRole(`trainer ${i}`, ['trainer', '--config', cfg, '--metaserver', at.metaUrl, '--id', `${name}-t${i}`, ...(pinShards ? ['--shard', String(i)] : [])], env),
  );
  const codes = await Promise.all([agg, ...trainers].map((r) => r.exited.then((e) => e.code)));
  return {
    codes,
    agg,
    trainers,
    results,
    rounds: jsonl<RoundRecord>(join(results, 'rounds.jsonl')),
    runs: jsonl<RunRecord>(join(results, 'runs.jsonl')),
    config: parseExperiment(testConfig({ ...o, dataDir: at.dataDir, name })),
  };
}
