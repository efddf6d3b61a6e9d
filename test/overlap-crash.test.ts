// Crash consistency of the overlapped round loop, over real processes: the aggregator is SIGKILLed
// at exact moments of a round (FEDSLICE_CRASH_AT makes it kill itself there), restarted with
// --resume, and the run must end with every round recorded once, the same figures as a run that
// was never killed, and no round trained twice.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMetaserver, type Metaserver } from '../metaserver/server.ts';
import { readCheckpoint } from '../core/results/checkpoint.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { parseExperiment } from '../core/config.ts';
import { runKey } from '../core/results/schema.ts';
import { checkpointPath } from '../aggregator/run.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { jsonl, startRole, stopAll, tempDir } from './helpers/roles.ts';
import { makeTestData, testConfig, writeConfig } from './helpers/experiment.ts';

const TOKEN = 'crash-token';
let dir: string;
let dataDir: string;
let meta: Metaserver;
let reference: RoundRecord[];

function aggregator(config: string, job: string, results: string, env: Record<string, string> = {}, extra: string[] = []) {
  return startRole(`aggregator ${job}`, ['aggregator', '--config', config, '--metaserver', meta.url, '--job', job, '--results', results, ...extra], { FEDSLICE_TOKEN: TOKEN, ...env });
}
function trainer(config: string, job: string, id: string) {
  return startRole(`trainer ${id}`, ['trainer', '--config', config, '--metaserver', meta.url, '--job', job, '--id', id], { FEDSLICE_TOKEN: TOKEN });
}

const options = (name: string) => ({ dataDir, worldSize: 1, rounds: 3, steps: 3, fraction: 0.5, roundTimeoutS: 600, name });
const figures = (rounds: RoundRecord[]) => rounds.map((r) => [r.round, r.testAccuracy, r.testLoss, r.trainLoss, r.samplesSeen]);

beforeAll(async () => {
  dir = tempDir('fedslice-crash-');
  dataDir = makeTestData(dir);
  meta = await startMetaserver({ port: 0, log: () => {} });
  const cfg = writeConfig(dir, 'reference.json', options('crash'));
  const results = join(dir, 'results-reference');
  const agg = aggregator(cfg, 'reference', results);
  const t = trainer(cfg, 'reference', 'ref');
  expect((await agg.exited).code).toBe(0);
  expect((await t.exited).code).toBe(0);
  reference = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
  expect(reference.map((r) => r.round)).toEqual([0, 1, 2, 3]);
}, 600_000);
afterAll(() => meta.close());
afterEach(() => stopAll());

describe('a SIGKILLed aggregator resumed with --resume loses and repeats no round', () => {
  // moment, the rounds the store holds right after the kill, the checkpoint's round
  const cases: [string, number[], number][] = [
    ['checkpointed:0', [], 0],
    ['checkpointed:1', [0], 1],
    ['evaluating:1', [0], 1],
    ['recorded:1', [0, 1], 1],
  ];
  it.each(cases)('killed at %s', async (moment, recordedAtKill, checkpointed) => {
    const job = `crash-${moment.replace(':', '-')}`;
    const cfg = writeConfig(dir, `${job}.json`, options('crash'));
    const results = join(dir, `results-${job}`);
    const first = aggregator(cfg, job, results, { FEDSLICE_CRASH_AT: moment });
    const t = trainer(cfg, job, 'c0');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(first.output()).toContain(`FEDSLICE_CRASH_AT=${moment}: killing this process`);

    // what the kill left: the checkpoint of the round, and only the records before it (or with it)
    const roundsFile = join(results, 'rounds.jsonl');
    const rounds = () => (existsSync(roundsFile) ? jsonl<RoundRecord>(roundsFile) : []);
    expect(rounds().map((r) => r.round)).toEqual(recordedAtKill);
    const key = runKey(parseExperiment(testConfig(options('crash'))));
    const ckpt = await readCheckpoint(checkpointPath(results, key), alexnetLayers(parseExperiment(testConfig(options('crash'))).model));
    expect(ckpt.metadata.round).toBe(String(checkpointed));

    const second = aggregator(cfg, job, results, {}, ['--resume']);
    const [agg, tr] = [await second.exited, await t.exited];
    expect([agg.code, tr.code], `aggregator:\n${second.output()}\ntrainer:\n${t.output()}`).toEqual([0, 0]);
    const unrecorded = !recordedAtKill.includes(checkpointed);
    const resumed = `resuming run \\S+ after round ${checkpointed}${unrecorded ? ', whose evaluation is not recorded: evaluating it again' : '\n'}`;
    expect(second.output()).toMatch(new RegExp(resumed));

    const all = rounds();
    expect(new Set(all.map((r) => r.runId)).size).toBe(1);
    expect(all.map((r) => r.round)).toEqual([0, 1, 2, 3]);
    expect(figures(all)).toEqual(figures(reference));
    // the checkpointed round was evaluated again, not trained again
    for (let round = 1; round <= checkpointed; round++) {
      expect(t.output().match(new RegExp(`round ${round}: training`, 'g'))).toHaveLength(1);
    }
    const runs = jsonl<RunRecord>(join(results, 'runs.jsonl'));
    expect(runs.map((r) => r.status)).toEqual(['started', 'started', 'completed']);
  }, 600_000);
});
