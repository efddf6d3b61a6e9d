/**
 * What a run starts from: nothing (its key already completed), its own last checkpoint (--resume),
 * or the configured initial weights. Reads the results store and the checkpoint; writes nothing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Experiment } from '../core/config.ts';
import { FedsliceError } from '../core/errors.ts';
import type { LayerSpec } from '../core/model/spec.ts';
import type { Weights } from '../core/model/tensor.ts';
import { initialWeights } from '../core/model/init.ts';
import { plannedRounds } from '../core/aggregation/async-rule.ts';
import { readCheckpoint } from '../core/results/checkpoint.ts';
import type { ResultsStore } from '../core/results/store.ts';
import { runKey } from '../core/results/schema.ts';
import type { RunRecord } from '../core/results/types.ts';
import type { TrainedRound } from './round-record.ts';

export function checkpointPath(results: string, key: string): string {
  return join(results, 'checkpoints', `${key}.safetensors`);
}

/** Running figures a run carries across resumes, for curves against time, samples and updates. */
export interface RunTotals {
  elapsedSeconds: number;
  samplesSeen: number;
  updatesApplied: number;
  /** The model version (async mode: merges applied so far). */
  version: number;
}

export interface RunStart {
  kind: 'fresh' | 'resume';
  runId: string;
  key: string;
  weights: Weights;
  /** The first round still to train (0: the model before training, evaluated only) unless resumed. */
  firstRound: number;
  /** The last evaluation index the run will record. */
  plannedRounds: number;
  /** Trainer id -> slot, so trainers that come back get their slots back. */
  slots: Record<string, number>;
  totals: RunTotals;
  /**
   * The checkpoint's round when the store has no record of it (the last process died after the
   * checkpoint, before the evaluation's record): its model is `weights`; it is evaluated again,
   * not trained again.
   */
  unrecorded: TrainedRound | null;
}

export type RunPlan = { kind: 'already-completed' } | RunStart;

export interface PlanOptions {
  config: Experiment;
  layers: LayerSpec[];
  store: ResultsStore;
  resume: boolean;
  force: boolean;
  log: (line: string) => void;
}

export async function planRun(o: PlanOptions): Promise<RunPlan> {
  const key = runKey(o.config);
  if (o.store.latestForKey(key, (r) => r.status === 'completed') && !o.force) {
    if (o.resume) {
      o.log(`aggregator: run ${key} is already completed in ${o.store.dir}; nothing to do`);
      return { kind: 'already-completed' };
    }
    throw new FedsliceError('FEDSLICE_ERR_COMPLETED', `run ${key} is already completed in ${o.store.dir}; pass --force to run it again`);
  }
  const unfinished = o.store.latestForKey(key, (r) => r.status !== 'completed');
  const ckptPath = checkpointPath(o.store.dir, key);
  if (o.resume && unfinished && existsSync(ckptPath)) {
    const resumed = await resumeFrom(ckptPath, unfinished, o);
    if (resumed) return resumed;
  } else if (o.resume) {
    o.log(`aggregator: nothing to resume for ${key}; starting afresh`);
  }
  return {
    kind: 'fresh',
    runId: `${key}-${Date.now().toString(36)}`,
    key,
    weights: await startingWeights(o.config, o.layers),
    firstRound: 0,
    plannedRounds: plannedRounds(o.config.federation),
    slots: {},
    totals: { elapsedSeconds: 0, samplesSeen: 0, updatesApplied: 0, version: 0 },
    unrecorded: null,
  };
}

/** The run `unfinished` continued from its checkpoint; null when the checkpoint is another run's. */
async function resumeFrom(ckptPath: string, unfinished: RunRecord, o: PlanOptions): Promise<RunStart | null> {
  const ckpt = await readCheckpoint(ckptPath, o.layers);
  if (ckpt.metadata.runId !== unfinished.runId) {
    o.log(`aggregator: checkpoint ${ckptPath} belongs to run ${ckpt.metadata.runId}, not ${unfinished.runId}; starting afresh`);
    return null;
  }
  const last = parseJson<TrainedRound>(ckpt.metadata.record, ckptPath, 'record');
  const recorded = o.store.roundsOf(unfinished.runId).some((r) => r.round === last.round);
  o.log(`aggregator: resuming run ${unfinished.runId} after round ${last.round}${recorded ? '' : `, whose evaluation is not recorded: evaluating it again`}`);
  return {
    kind: 'resume',
    runId: unfinished.runId,
    key: unfinished.key,
    weights: ckpt.weights,
    firstRound: last.round + 1,
    plannedRounds: unfinished.plannedRounds ?? plannedRounds(o.config.federation),
    slots: parseJson<Record<string, number>>(ckpt.metadata.slots ?? '{}', ckptPath, 'slots'),
    totals: {
      elapsedSeconds: last.elapsedSeconds ?? 0,
      samplesSeen: last.samplesSeen ?? 0,
      updatesApplied: last.updatesApplied ?? 0,
      version: last.version ?? 0,
    },
    // Checkpoints written before they held a round's own sample count give it as 0.
    unrecorded: recorded ? null : { ...last, samples: last.samples ?? 0 },
  };
}

function parseJson<T>(text: string | undefined, path: string, field: string): T {
  try {
    return JSON.parse(text ?? '') as T;
  } catch {
    throw new FedsliceError('FEDSLICE_ERR_CHECKPOINT', `checkpoint ${path} has no readable "${field}" metadata; delete it to start the run afresh`);
  }
}

async function startingWeights(config: Experiment, layers: LayerSpec[]): Promise<Weights> {
  if (config.model.init === 'random') return initialWeights(layers, config.seed, 'pytorch');
  if (config.model.init === 'kaiming') return initialWeights(layers, config.seed, 'kaiming');
  if (!existsSync(config.model.init)) {
    throw new FedsliceError('FEDSLICE_ERR_INIT', `model.init: checkpoint ${config.model.init} does not exist; give a safetensors file, "random" or "kaiming"`);
  }
  return (await readCheckpoint(config.model.init, layers)).weights;
}
