// The step log, trainer figures and run profile end to end: a metaserver, an aggregator and two
// trainers as separate processes; an observer watches the results folder while the rounds run.
import { type FSWatcher, mkdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJsonLines } from '../core/results/jsonl.ts';
import { runKey } from '../core/results/schema.ts';
import { PROFILE_FILE, runLogDir, type RunProfile } from '../core/results/profile.ts';
import type { RoundRecord, StepRecord } from '../core/results/types.ts';
import { jsonl, startRole, stopAll, type Role } from './helpers/roles.ts';
import { startTestBed, testConfig, writeConfig } from './helpers/experiment.ts';
import { parseExperiment } from '../core/config.ts';

let dir: string;
let dataDir: string;
let metaUrl: string;
let metaserver: Role;

beforeAll(async () => {
  ({ dir, dataDir, metaserver, metaUrl } = await startTestBed('fedslice-steps-'));
});
afterAll(() => stopAll());

/** What an observer of the results folder saw while the run went on. */
interface Observation {
  /**
   * Slots with round-1 step lines, none of them at the round's last step, read while the
   * aggregator had logged no round-1 update yet: points streamed during training, not sent
   * with the update.
   */
  slotsStreamingBeforeUpdates: number;
  /** Step lines of round 1 read while rounds.jsonl had no record of round 1 yet. */
  round1StepsBeforeItsRecord: number;
  /** Torn lines read in steps.jsonl other than an unfinished last one. */
  tornInside: number;
}

/** Re-reads the store at every change in the folder (inotify), as a live view would. */
function observe(results: string, aggregatorLog: () => string): { stop: () => Observation } {
  const seen: Observation = { slotsStreamingBeforeUpdates: 0, round1StepsBeforeItsRecord: 0, tornInside: 0 };
  const look = () => {
    const updatesLogged = /round 1: update from/.test(aggregatorLog());
    const steps = readJsonLines<StepRecord>(join(results, 'steps.jsonl'));
    const rounds = readJsonLines<RoundRecord>(join(results, 'rounds.jsonl')).records;
    seen.tornInside = Math.max(seen.tornInside, steps.torn.filter((t) => !t.last).length);
    const round1 = steps.records.filter((x) => x.round === 1);
    if (!updatesLogged && round1.every((x) => x.globalStep < 12)) {
      seen.slotsStreamingBeforeUpdates = Math.max(seen.slotsStreamingBeforeUpdates, new Set(round1.map((x) => x.slot)).size);
    }
    if (!rounds.some((r) => r.round >= 1)) {
      seen.round1StepsBeforeItsRecord = Math.max(seen.round1StepsBeforeItsRecord, steps.records.filter((s) => s.round === 1).length);
    }
  };
  const watcher: FSWatcher = watch(results, look);
  return {
    stop: () => {
      watcher.close();
      return seen;
    },
  };
}

describe('step log over real processes', () => {
  it('trainers stream step points during the round; round records carry trainer figures; profile.json describes the run alone', async () => {
    const name = 'steps';
    const o = { worldSize: 2, mode: 'slice' as const, rounds: 2, steps: 12, everySteps: 3, learningRate: 1e-3 };
    const cfg = writeConfig(dir, `${name}.json`, { ...o, dataDir, name });
    const config = parseExperiment(testConfig({ ...o, dataDir, name }));
    const results = join(dir, 'results');
    mkdirSync(results, { recursive: true });
    const env = { FEDSLICE_TOKEN: 'token-steps' };
    const agg = startRole('aggregator', ['aggregator', '--config', cfg, '--metaserver', metaUrl, '--results', results], env);
    const observer = observe(results, () => agg.output());
    const roles = [agg, ...[0, 1].map((i) => startRole(`trainer ${i}`, ['trainer', '--config', cfg, '--metaserver', metaUrl, '--id', `t${i}`], env))];
    const codes = await Promise.all(roles.map((r) => r.exited.then((e) => e.code)));
    const seen = observer.stop();
    expect(codes).toEqual([0, 0, 0]);

    // arriving while round 1 trained, not with its update: 4 points per trainer, written whole
    expect(seen.slotsStreamingBeforeUpdates).toBe(2);
    expect(seen.round1StepsBeforeItsRecord).toBeGreaterThanOrEqual(2);
    expect(seen.tornInside).toBe(0);
    const steps = jsonl<StepRecord>(join(results, 'steps.jsonl'));
    const runId = jsonl<{ runId: string }>(join(results, 'runs.jsonl'))[0].runId;
    expect(steps).toHaveLength(2 * 2 * 4);
    for (const slot of [0, 1]) {
      const mine = steps.filter((s) => s.slot === slot);
      expect(mine.map((s) => [s.round, s.globalStep])).toEqual([[1, 3], [1, 6], [1, 9], [1, 12], [2, 15], [2, 18], [2, 21], [2, 24]]);
      for (const s of mine) {
        expect(s).toMatchObject({ kind: 'step', runId, epoch: 0, intervalSteps: 3, samples: 96, learningRate: 1e-3 });
        expect(Number.isFinite(s.loss) && s.loss > 0).toBe(true);
        expect(s.samplesPerSecond).toBeGreaterThan(0);
        expect(Date.parse(s.time)).toBeGreaterThan(0);
      }
    }
    const rounds = jsonl<RoundRecord>(join(results, 'rounds.jsonl'));
    // every point of a round arrived before that round's record was made
    for (const r of rounds.filter((x) => x.round >= 1)) {
      for (const s of steps.filter((x) => x.round === r.round)) expect(s.elapsedSeconds).toBeLessThan(r.elapsedSeconds ?? 0);
    }

    for (const r of rounds) expect(r.aggregatorPeakRssBytes).toBeGreaterThan(10e6);
    expect(rounds[0].trainers).toBeUndefined();
    for (const r of rounds.slice(1)) {
      const t = [...(r.trainers ?? [])].sort((a, b) => a.slot - b.slot);
      expect(t.map((x) => [x.slot, x.steps])).toEqual([[0, 12], [1, 12]]);
      for (const x of t) {
        expect(x.stepP50Seconds).toBeGreaterThan(0);
        expect(x.stepP50Seconds).toBeLessThanOrEqual(x.stepP95Seconds);
        expect(x.stepP95Seconds).toBeLessThanOrEqual(x.stepP99Seconds);
        expect(x.dataLoadShare).toBeGreaterThan(0);
        expect(x.dataLoadShare).toBeLessThan(1);
        expect(x.peakRssBytes).toBeGreaterThan(50e6);
        expect(x.tensorBytes).toBeGreaterThan(0);
        expect(x.tensorCount).toBeGreaterThan(0);
        expect(x.gpuBytes).toBeNull();
      }
    }

    const profile = JSON.parse(readFileSync(join(runLogDir(results, runKey(config)), PROFILE_FILE), 'utf8')) as RunProfile;
    expect(profile).toMatchObject({ kind: 'profile', runId, key: runKey(config), status: 'completed', config });
    expect(profile.environment.backend).toMatch(/wasm|cpu|tensorflow/);
    expect(profile.timing.trainingRounds).toBe(2);
    expect(profile.timing.finalTestAccuracy).toBe(rounds[2].testAccuracy);
    expect(profile.trainers?.n).toBe(4);
    expect(profile.trainers?.aggregatorPeakRssBytes).toBeGreaterThan(10e6);
    const { data } = profile;
    expect(data).toMatchObject({ dataset: 'synthetic', fraction: 1, partition: 'contiguous', numClasses: 10, trainImages: 4000, testImages: 500 });
    expect(data.shards.map((s) => s.shard)).toEqual([0, 1]);
    expect(data.shards.reduce((a, s) => a + s.images, 0)).toBe(4000);
    for (const s of data.shards) {
      expect(s.perClass).toHaveLength(10);
      expect(s.perClass.reduce((a, b) => a + b, 0)).toBe(s.images);
    }
    expect(data.testPerClass.reduce((a, b) => a + b, 0)).toBe(500);
    expect(profile.summary?.totalTrainingSeconds).toBeGreaterThan(0);
  }, 300_000);
});
