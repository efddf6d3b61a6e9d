// The reference algorithm end to end: a metaserver, an aggregator and two trainers as separate
// processes over real sockets, on the synthetic set at width 1/8.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../core/results/checkpoint.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { runKey } from '../core/results/schema.ts';
import { checkpointPath } from '../aggregator/run.ts';
import { startRole, stopAll, type Role } from './helpers/roles.ts';
import { startTestBed, type TestConfigOptions } from './helpers/experiment.ts';
import { runJob as runJobOf } from './helpers/job.ts';

let dir: string;
let dataDir: string;
let metaUrl: string;
let metaserver: Role;

beforeAll(async () => {
  ({ dir, dataDir, metaserver, metaUrl } = await startTestBed('fedslice-fed-'));
});
afterAll(() => stopAll());

const runJob = (name: string, o: Omit<TestConfigOptions, 'dataDir' | 'name'>) => runJobOf({ dir, dataDir, metaUrl }, name, o);

describe('federation over real processes', () => {
  it('slice mode with swap: 2 trainers, 2 rounds, accuracy rises, everything recorded', async () => {
    const r = await runJob('slice', { worldSize: 2, mode: 'slice', swap: true, rounds: 2, steps: 70, learningRate: 1e-3 });
    expect(r.codes).toEqual([0, 0, 0]);
    expect(r.rounds.map((x) => x.round)).toEqual([0, 1, 2]);
    expect(r.rounds[2].testAccuracy).toBeGreaterThan(r.rounds[0].testAccuracy);
    expect(r.runs.map((x) => x.status)).toEqual(['started', 'completed']);
    // swap: each trainer trained rank 0 in one round and rank 1 in the other
    for (const t of r.trainers) expect(t.output()).toMatch(/round 1: training rank (\d).*\n(.*\n)*.*round 2: training rank (?!\1)\d/);
    const rec = r.rounds[1];
    expect(rec).toMatchObject({ worldSize: 2, swap: true, mode: 'slice', trainersReporting: 2, dataset: 'synthetic', width: 0.125 });
    expect(rec.bytesSent).toBeGreaterThan(0);
    expect(rec.bytesReceived).toBeGreaterThan(0);
    expect(rec.trainSeconds).toBeGreaterThan(0);
    expect(rec.samplesPerSecond).toBeGreaterThan(0);
    expect(r.runs[1].environment.backend).toMatch(/wasm|cpu|tensorflow/);
  });

  it('fedavg mode: the same, with full-model replicas', async () => {
    const r = await runJob('fedavg', { worldSize: 2, mode: 'fedavg', rounds: 2, steps: 70, learningRate: 1e-3 });
    expect(r.codes).toEqual([0, 0, 0]);
    expect(r.rounds.map((x) => x.round)).toEqual([0, 1, 2]);
    expect(r.rounds[2].testAccuracy).toBeGreaterThan(r.rounds[0].testAccuracy);
  });

  it('learning rate 0 leaves the global model bit-identical through a round', async () => {
    const r = await runJob('lr0', { worldSize: 2, mode: 'slice', swap: true, layerwiseSwap: true, rounds: 2, steps: 2, learningRate: 0 });
    expect(r.codes).toEqual([0, 0, 0]);
    const layers = alexnetLayers(r.config.model);
    const start = initialWeights(layers, r.config.seed);
    const { weights } = await readCheckpoint(checkpointPath(r.results, runKey(r.config)), layers);
    weights.forEach((t, i) => expect(Buffer.from(t.data.buffer).equals(Buffer.from(start[i].data.buffer))).toBe(true));
    expect(r.rounds[2].testLoss).toBe(r.rounds[0].testLoss);
  });

  it('refuses a completed config unless --force, with one clear line', async () => {
    const cfg = join(dir, 'lr0.json');
    const again = startRole('aggregator', ['aggregator', '--config', cfg, '--metaserver', metaUrl, '--results', join(dir, 'results-lr0')], { FEDSLICE_TOKEN: 'x' });
    expect((await again.exited).code).toBe(1);
    expect(again.output()).toMatch(/fedslice: error: run ws2_lr0_\S+ is already completed in .*; pass --force to run it again/);
  });
});
