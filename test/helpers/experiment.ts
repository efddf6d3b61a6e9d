/** Small experiment configs and data for end-to-end tests: seconds per run on two cores. */
import { join } from 'node:path';
import { writeSynthetic } from '../../core/data/synthetic.ts';
import { startRole, tempDir, writeJson, type Role } from './roles.ts';

export const TEST_DATA = { numClasses: 10, trainCount: 4000, testCount: 500, seed: 0 };

/** Writes the synthetic set the tests train on into `dir`/data and returns that folder. */
export function makeTestData(dir: string): string {
  const data = join(dir, 'data');
  writeSynthetic(data, TEST_DATA);
  return data;
}

/** What an end-to-end test file starts from: a temporary directory, test data in it, and a metaserver process. */
export interface TestBed {
  dir: string;
  dataDir: string;
  metaserver: Role;
  metaUrl: string;
}

export async function startTestBed(prefix: string): Promise<TestBed> {
  const dir = tempDir(prefix);
  const dataDir = makeTestData(dir);
  const metaserver = startRole('metaserver', ['metaserver', '--port', '0']);
  const [, metaUrl] = await metaserver.waitFor(/listening on (ws:\/\/\S+)/);
  return { dir, dataDir, metaserver, metaUrl };
}

export interface TestConfigOptions {
  dataDir: string;
  /** model.width (default 1/8). */
  width?: number;
  /** dataset.fraction (default 1): fewer images to train and evaluate on. */
  fraction?: number;
  worldSize?: number;
  mode?: 'slice' | 'fedavg' | 'async';
  async?: Record<string, unknown>;
  stragglers?: { slot: number; slowdown: number }[];
  swap?: boolean;
  layerwiseSwap?: boolean;
  rounds?: number;
  learningRate?: number;
  steps?: number;
  epochs?: number;
  roundTimeoutS?: number;
  minTrainers?: number;
  name?: string;
  seed?: number;
  /** log.everySteps: steps between two points of the step log. */
  everySteps?: number;
}

export function testConfig(o: TestConfigOptions): Record<string, unknown> {
  return {
    name: o.name ?? 'e2e',
    dataset: { name: 'synthetic', dir: o.dataDir, ...(o.fraction ? { fraction: o.fraction } : {}) },
    model: { width: o.width ?? 0.125, numClasses: 10 },
    federation: {
      worldSize: o.worldSize ?? 2,
      mode: o.mode ?? 'slice',
      swap: o.swap ?? false,
      layerwiseSwap: o.layerwiseSwap ?? false,
      rounds: o.rounds ?? 2,
      roundTimeoutS: o.roundTimeoutS ?? 120,
      ...(o.minTrainers !== undefined ? { minTrainers: o.minTrainers } : {}),
      ...(o.async ? { async: o.async } : {}),
      ...(o.stragglers ? { stragglers: o.stragglers } : {}),
    },
    train: {
      learningRate: o.learningRate ?? 1e-3,
      batchSize: 32,
      epochs: o.epochs ?? 1,
      maxStepsPerEpoch: o.steps ?? 10,
    },
    eval: { batchSize: 500 },
    ...(o.everySteps !== undefined ? { log: { everySteps: o.everySteps } } : {}),
    seed: o.seed ?? 123,
  };
}

export function writeConfig(dir: string, file: string, o: TestConfigOptions): string {
  return writeJson(join(dir, file), testConfig(o));
}

export interface TestSweepOptions {
  dataDir: string;
  name: string;
  grid: Record<string, unknown[]>;
  /** train.maxStepsPerEpoch; 0 leaves it to the grid. */
  steps: number;
  rounds: number;
  /** model.width (default 1/8). */
  width?: number;
  skip?: Record<string, unknown>[];
}

/** A tiny sweep file over the test data (a quarter of it), written to `dir`/`name`.json. */
export function writeSweep(dir: string, o: TestSweepOptions): string {
  return writeJson(join(dir, `${o.name}.json`), {
    name: o.name,
    base: {
      dataset: { name: 'synthetic', dir: o.dataDir, fraction: 0.25 },
      model: { width: o.width ?? 0.125, numClasses: 10 },
      federation: { rounds: o.rounds, roundTimeoutS: 120 },
      train: { learningRate: 0.001, epochs: 1, ...(o.steps ? { maxStepsPerEpoch: o.steps } : {}) },
      eval: { batchSize: 500 },
    },
    grid: o.grid,
    ...(o.skip ? { skip: o.skip } : {}),
  });
}
