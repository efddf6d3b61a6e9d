/**
 * The aggregator's round loop (Flower's shape: configure, collect under a timeout with failures
 * as data, aggregate, evaluate, record). Everything it waits for is an event: trainers joining,
 * updates arriving, trainers leaving, the round timer, a signal.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WebSocket } from 'ws';
import type { Experiment } from '../core/config.ts';
import { minTrainersOf, taskHyperOf } from '../core/config.ts';
import { alexnetLayers, type LayerSpec } from '../core/model/spec.ts';
import { makeRule, type Assignment, type Update } from '../core/aggregation/rules.ts';
import { FedsliceError } from '../core/errors.ts';
import { totalBytes, type Weights } from '../core/model/tensor.ts';
import { initBackend } from '../core/compute/backend.ts';
import { initialWeights } from '../core/model/init.ts';
import { evaluate } from '../core/training/evaluate.ts';
import { loadForExperiment } from '../core/data/load.ts';
import type { ImageSet } from '../core/data/types.ts';
import { ResultsStore } from '../core/results/store.ts';
import { runKey, runKeyFields } from '../core/results/schema.ts';
import { runSummary, summaryField } from '../core/results/summary.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { runEnvironment } from '../core/results/environment.ts';
import { readCheckpoint, writeCheckpoint } from '../core/results/checkpoint.ts';
import { removeStaleTemps } from '../core/atomic-file.ts';
import { StorageError } from '../core/results/storage-error.ts';
import { maxFrameBytes } from '../core/wire/codec.ts';
import { checkUpdateContent } from '../core/wire/checks.ts';
import type { AggregatorToTrainer, MessageOf } from '../core/wire/schema.ts';
import { connectMetaserver } from '../metaserver/client.ts';
import { TrainerRegistry, type SlotHolder } from './registry.ts';
import { RoundCollector } from './round-collector.ts';
import { AsyncLoop, type AsyncWindow } from './async-loop.ts';
import { TaskTimes } from './task-times.ts';
import { plannedRounds } from '../core/aggregation/async-rule.ts';
import { startTrainerServer } from './trainer-server.ts';
import type { ClientTls, ServerTls } from '../core/wire/tls.ts';
import type { AdmissionLimits } from '../core/wire/admission.ts';

export interface AggregatorOptions {
  config: Experiment;
  metaserver: string;
  job: string;
  token: string;
  results: string;
  resume: boolean;
  force: boolean;
  host: string;
  port: number;
  /** The host trainers are told to connect to (default: host). */
  advertise?: string;
  /** Cert and key for the trainer server (wss://). */
  tls?: ServerTls;
  /** Bounds on trainer connections that have not joined yet. */
  admission?: Partial<AdmissionLimits>;
  /** How to verify a wss:// metaserver. */
  clientTls?: ClientTls;
  signal: AbortSignal;
  log: (line: string) => void;
}

interface ReceivedUpdate extends Update {
  trainLoss: number;
  trainSeconds: number;
  samplesPerSecond: number;
  receivedAt: number;
}

export function checkpointPath(results: string, key: string): string {
  return join(results, 'checkpoints', `${key}.safetensors`);
}

const now = () => performance.now() / 1000;

class Interrupted extends FedsliceError {
  constructor(signalName: string) {
    super('FEDSLICE_ERR_INTERRUPTED', `interrupted by ${signalName}`);
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal, onAbort?: () => void): Promise<T> {
  if (signal.aborted) return Promise.reject(new Interrupted(String(signal.reason ?? 'signal')));
  return new Promise<T>((resolve, reject) => {
    const stop = () => {
      onAbort?.();
      reject(new Interrupted(String(signal.reason ?? 'signal')));
    };
    signal.addEventListener('abort', stop, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

export async function runAggregator(o: AggregatorOptions): Promise<'completed' | 'already-completed'> {
  const { config, log } = o;
  const fed = config.federation;
  const layers = alexnetLayers(config.model);
  const rule = makeRule(layers, fed);
  const store = new ResultsStore(o.results);
  const key = runKey(config);
  const ckptPath = checkpointPath(o.results, key);
  for (const name of removeStaleTemps(ckptPath)) log(`aggregator: removed ${name}, a checkpoint write left unfinished by a process that is gone`);

  // What to run: fresh, resumed, or nothing.
  if (store.latestForKey(key, (r) => r.status === 'completed') && !o.force) {
    if (o.resume) {
      log(`aggregator: run ${key} is already completed in ${o.results}; nothing to do`);
      return 'already-completed';
    }
    throw new FedsliceError('FEDSLICE_ERR_COMPLETED', `run ${key} is already completed in ${o.results}; pass --force to run it again`);
  }
  const unfinished = store.latestForKey(key, (r) => r.status !== 'completed');

  const backend = await initBackend(config.backend);
  const data = loadForExperiment(config.dataset, config.seed);
  checkLabels(data.test, config.model.numClasses);

  let runId = `${key}-${Date.now().toString(36)}`;
  let global: Weights;
  let startRound = 0;
  let slots: Record<string, number> = {};
  // Running totals carried across a resume, for curves against time, samples and updates.
  const totals = { elapsedSeconds: 0, samplesSeen: 0, updatesApplied: 0, version: 0 };
  if (o.resume && unfinished && existsSync(ckptPath)) {
    const ckpt = await readCheckpoint(ckptPath, layers);
    if (ckpt.metadata.runId !== unfinished.runId) {
      log(`aggregator: checkpoint ${ckptPath} belongs to run ${ckpt.metadata.runId}, not ${unfinished.runId}; starting afresh`);
      global = await startingWeights(config, layers);
    } else {
      runId = unfinished.runId;
      global = ckpt.weights;
      startRound = Number(ckpt.metadata.round) + 1;
      slots = JSON.parse(ckpt.metadata.slots ?? '{}') as Record<string, number>;
      // The checkpoint is written before its round record: restore the record if the last run died in between.
      const last = JSON.parse(ckpt.metadata.record) as RoundRecord;
      if (!store.roundsOf(runId).some((r) => r.round === last.round)) store.appendRound(last);
      totals.elapsedSeconds = last.elapsedSeconds ?? 0;
      totals.samplesSeen = last.samplesSeen ?? 0;
      totals.updatesApplied = last.updatesApplied ?? 0;
      totals.version = last.version ?? 0;
      log(`aggregator: resuming run ${runId} after round ${startRound - 1}`);
    }
  } else {
    if (o.resume) log(`aggregator: nothing to resume for ${key}; starting afresh`);
    global = await startingWeights(config, layers);
  }

  const startedAt = new Date();
  const elapsedAtStart = totals.elapsedSeconds - now();
  /** Adds the running totals to a round record. */
  const withTotals = (r: RoundRecord, updates: number, samples: number): RoundRecord => {
    totals.updatesApplied += updates;
    totals.samplesSeen += samples;
    return { ...r, elapsedSeconds: elapsedAtStart + now(), samplesSeen: totals.samplesSeen, updatesApplied: totals.updatesApplied };
  };
  let processCounts: Record<string, number> = {};
  const taskTimes = new TaskTimes();
  const runRecord: RunRecord = {
    kind: 'run',
    runId,
    key,
    keyFields: runKeyFields(config),
    status: 'started',
    config,
    startedAt: startedAt.toISOString(),
    environment: runEnvironment(backend),
  };
  const finishRun = (status: 'completed' | 'failed' | 'interrupted', error?: string) =>
    store.appendRun({
      ...runRecord,
      status,
      endedAt: new Date().toISOString(),
      wallSeconds: (Date.now() - startedAt.getTime()) / 1000,
      ...(error ? { error } : {}),
      ...summaryField({ ...runSummary(store.roundsOf(runId)), ...taskTimes.summary(), ...processCounts }),
    });

  const lastRound = plannedRounds(fed);
  const registry = new TrainerRegistry<WebSocket>(fed.worldSize);
  registry.restore(slots);
  let bytesSent = 0;
  let bytesReceived = 0;
  let round = startRound;
  let collector: RoundCollector<ReceivedUpdate> | null = null;
  const assignments = new Map<number, Assignment>();
  const tasks = new Map<number, AggregatorToTrainer>();
  let joinWaiter: (() => void) | null = null;
  let asyncLoop: AsyncLoop | null = null;

  const sendTask = (h: SlotHolder<WebSocket>) => {
    const task = tasks.get(h.slot);
    if (!task || !h.conn || !collector || collector.has(h.slot)) return;
    bytesSent += server.send(h.conn, task);
    collector.started(h.slot);
  };

  const server = await startTrainerServer({
    host: o.host,
    port: o.port,
    ...(o.advertise ? { advertise: o.advertise } : {}),
    ...(o.tls ? { tls: o.tls } : {}),
    ...(o.admission ? { admission: o.admission } : {}),
    job: o.job,
    token: o.token,
    maxPayload: maxFrameBytes(totalBytes(global)),
    registry,
    log,
    onJoin: (h, rejoined) => {
      log(`aggregator: trainer ${h.id} ${rejoined ? 'rejoined' : 'joined'} as slot ${h.slot} (${registry.connected().length}/${fed.worldSize})`);
      joinWaiter?.();
      if (asyncLoop) asyncLoop.onJoin(h);
      else sendTask(h); // a trainer that comes back mid-round gets its task again
    },
    onLeave: (h) => {
      log(`aggregator: trainer ${h.id} (slot ${h.slot}) left (${registry.connected().length}/${fed.worldSize})`);
      asyncLoop?.onLeave(h);
      collector?.away(h.slot);
    },
    onUpdate: (h, msg, bytes) => {
      bytesReceived += bytes;
      if (asyncLoop) {
        const refused = asyncLoop.onUpdate(h, msg);
        if (refused) {
          log(`aggregator: refused an update from ${h.id}: ${refused}`);
          if (h.conn) server.send(h.conn, { type: 'error', code: 'FEDSLICE_ERR_UPDATE', message: refused, round: msg.round });
        }
        return;
      }
      const reason = checkUpdate(msg, h, round, collector, assignments, rule.expectedShapes.bind(rule), o.job);
      if (reason) {
        log(`aggregator: refused an update from ${h.id}: ${reason}`);
        if (h.conn) server.send(h.conn, { type: 'error', code: 'FEDSLICE_ERR_UPDATE', message: reason, round: msg.round });
        return;
      }
      const m = msg.metrics;
      collector!.accept(h.slot, {
        assignment: assignments.get(h.slot)!,
        delta: msg.delta,
        numSamples: msg.numSamples,
        trainLoss: m.trainLoss,
        trainSeconds: m.trainSeconds,
        samplesPerSecond: m.samplesPerSecond,
        receivedAt: now(),
      });
      log(`aggregator: round ${round}: update from rank ${msg.rank} (${h.id}, ${msg.numSamples} samples, loss ${m.trainLoss.toFixed(4)}, ${m.trainSeconds.toFixed(1)} s)`);
    },
  });
  log(`aggregator: job ${o.job}: listening for trainers on ${server.url}`);

  let meta;
  try {
    meta = await connectMetaserver({
      url: o.metaserver,
      job: o.job,
      role: 'aggregator',
      id: `aggregator-${process.pid}`,
      token: o.token,
      address: server.url,
      ...(o.clientTls ? { tls: o.clientTls } : {}),
    });
  } catch (e) {
    await server.close();
    throw e;
  }
  const status = (state: 'waiting' | 'training' | 'completed' | 'failed', message?: string) =>
    meta.sendStatus({ state, round, rounds: lastRound, ...(message ? { message } : {}) });

  const notifyTrainers = (reason: 'completed' | 'failed', message?: string) => {
    for (const h of registry.connected()) {
      server.send(h.conn!, { type: 'done', job: o.job, reason, ...(message ? { message } : {}) });
    }
  };

  try {
    // Recorded only once the run can actually start: a wrong URL or token leaves no record behind.
    store.appendRun(runRecord);
    status('waiting');
    await abortable(waitForTrainers(), o.signal);

    if (round === 0) {
      const ev = await evaluate({ layers, weights: global, data: data.test, batchSize: config.eval.batchSize });
      const record = roundRecord({ runId, config, round: 0, ev, updates: [], t0: now(), mergeSeconds: 0, bytesSent: 0, bytesReceived: 0 });
      await commitRound(withTotals(fed.mode === 'async' ? { ...record, version: 0 } : record, 0, 0));
      round = 1;
    }

    if (fed.mode === 'async') {
      const sentBefore = { sent: bytesSent, received: bytesReceived };
      const loop = new AsyncLoop(
        {
          config,
          rule,
          job: o.job,
          registry,
          send: (conn, msg) => {
            const n = server.send(conn, msg);
            bytesSent += n;
            return n;
          },
          log,
          taskTimes,
          commit: async (weights, w) => {
            global = weights;
            const ev = await evaluate({ layers, weights, data: data.test, batchSize: config.eval.batchSize });
            const record = asyncRecord(runId, config, ev, w, bytesSent - sentBefore.sent, bytesReceived - sentBefore.received);
            sentBefore.sent = bytesSent;
            sentBefore.received = bytesReceived;
            round = w.round;
            await commitRound(withTotals(record, w.updates.length, w.updates.reduce((n, u) => n + u.numSamples, 0)));
            log(`aggregator: async: version ${w.version}, ${w.applied} updates applied, staleness mean ${record.staleness!.toFixed(2)} max ${record.maxStaleness}`);
          },
        },
        global,
        { version: totals.version, applied: totals.updatesApplied, round: round - 1, samplesSeen: totals.samplesSeen },
      );
      asyncLoop = loop;
      try {
        global = await abortable(loop.run(fed.roundTimeoutS), o.signal, () => loop.cancel(new Interrupted('signal')));
      } finally {
        processCounts = loop.summary();
      }
      round = fed.rounds + 1; // skips the synchronous rounds below
    }

    for (; round <= fed.rounds; round++) {
      const t0 = now();
      const sentBefore = bytesSent;
      const receivedBefore = bytesReceived;
      collector = new RoundCollector<ReceivedUpdate>(round, fed.worldSize, minTrainersOf(config), fed.roundTimeoutS, (missing) =>
        missing.map((s) => `slot ${s} (${registry.bySlot(s)?.id ?? 'never joined'}${registry.bySlot(s)?.conn ? '' : ', disconnected'})`).join(', '),
      );
      assignments.clear();
      tasks.clear();
      for (let slot = 0; slot < fed.worldSize; slot++) {
        const a = rule.assign(slot, round);
        assignments.set(slot, a);
        tasks.set(slot, {
          type: 'task',
          job: o.job,
          round,
          rank: a.rank,
          worldSize: fed.worldSize,
          mode: rule.mode,
          weights: rule.taskWeights(global, a),
          hyper: taskHyperOf(config, slot),
        });
      }
      for (const h of registry.connected()) sendTask(h);
      log(`aggregator: round ${round}/${fed.rounds}: sent ${registry.connected().length} tasks (${((bytesSent - sentBefore) / 1e6).toFixed(1)} MB)`);

      const c = collector;
      const outcome = await abortable(c.done, o.signal, () => c.cancel(new Interrupted('signal')));
      if (outcome.missing.length) {
        log(`aggregator: round ${round}: proceeding with ${outcome.updates.size}/${fed.worldSize} updates; missing slots ${outcome.missing.join(', ')} keep their old values`);
      }
      const updates = [...outcome.updates.values()];
      for (const u of updates) taskTimes.add(u.assignment.slot, u.trainSeconds);
      const tm = now();
      global = rule.combine(global, updates);
      const mergeSeconds = now() - tm;
      const ev = await evaluate({ layers, weights: global, data: data.test, batchSize: config.eval.batchSize });
      const record = roundRecord({
        runId, config, round, ev, updates, t0, mergeSeconds,
        bytesSent: bytesSent - sentBefore,
        bytesReceived: bytesReceived - receivedBefore,
      });
      log(`aggregator: round ${round}: merged in ${mergeSeconds.toFixed(3)} s`);
      await commitRound(withTotals(record, updates.length, updates.reduce((n, u) => n + u.numSamples, 0)));
      collector = null;
    }
    round = fed.rounds;
    notifyTrainers('completed');
    status('completed');
    finishRun('completed');
    log(`aggregator: run ${runId} completed`);
    return 'completed';
  } catch (e) {
    const message = (e as Error).message;
    const interrupted = e instanceof Interrupted;
    try {
      finishRun(interrupted ? 'interrupted' : 'failed', message);
    } catch (recordError) {
      // The store may be what failed (a full disk): the trainers and the sweep still hear why.
      log(`aggregator: could not record the run's end: ${(recordError as Error).message}`);
    }
    notifyTrainers('failed', message);
    status('failed', message);
    throw e;
  } finally {
    collector?.cancel(new Interrupted('shutdown'));
    await new Promise((r) => setTimeout(r, 50)); // let the done/status frames leave before closing
    meta.close();
    await server.close();
  }

  function waitForTrainers(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (registry.connected().length >= fed.worldSize) {
          clearTimeout(timer);
          joinWaiter = null;
          resolve();
        }
      };
      const timer = setTimeout(() => {
        joinWaiter = null;
        reject(
          new FedsliceError(
            'FEDSLICE_ERR_JOIN_TIMEOUT',
            `only ${registry.connected().length} of ${fed.worldSize} trainers joined job ${o.job} within roundTimeoutS=${fed.roundTimeoutS}s; start the missing trainers with --job ${o.job} and the same token`,
          ),
        );
      }, fed.roundTimeoutS * 1000);
      joinWaiter = check;
      log(`aggregator: waiting for ${fed.worldSize} trainers`);
      check();
    });
  }

  async function commitRound(record: RoundRecord): Promise<void> {
    const metadata = { runId, key, round: String(record.round), slots: JSON.stringify(registry.slots()), record: JSON.stringify(record) };
    // A failed write names the results directory, as a failed append does.
    await writeCheckpoint(ckptPath, layers, global, metadata).catch((e) => Promise.reject(e instanceof StorageError ? e.naming(o.results) : e));
    store.appendRound(record);
    log(`aggregator: round ${record.round}: test accuracy ${record.testAccuracy.toFixed(4)}, loss ${record.testLoss.toFixed(4)} (eval ${record.evalSeconds.toFixed(1)} s)`);
    status('training');
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

function checkLabels(set: ImageSet, numClasses: number): void {
  let max = 0;
  for (let i = 0; i < set.count; i++) if (set.labels[i] > max) max = set.labels[i];
  if (max >= numClasses) {
    throw new FedsliceError('FEDSLICE_ERR_CLASSES', `the data has label ${max} but model.numClasses is ${numClasses}; set model.numClasses to at least ${max + 1}`);
  }
}


function asyncRecord(
  runId: string,
  config: Experiment,
  ev: { loss: number; accuracy: number; seconds: number },
  w: AsyncWindow,
  bytesSent: number,
  bytesReceived: number,
): RoundRecord {
  const u = w.updates;
  const samples = u.reduce((n, x) => n + x.numSamples, 0);
  const mean = (f: (x: (typeof u)[number]) => number) => (u.length ? u.reduce((s, x) => s + f(x), 0) / u.length : 0);
  return {
    kind: 'round',
    runId,
    ...runKeyFields(config),
    round: w.round,
    testLoss: ev.loss,
    testAccuracy: ev.accuracy,
    trainLoss: samples ? u.reduce((s, x) => s + x.trainLoss * x.numSamples, 0) / samples : null,
    roundSeconds: w.seconds + ev.seconds,
    trainSeconds: u.reduce((m, x) => Math.max(m, x.trainSeconds), 0),
    transferSeconds: mean((x) => x.overheadSeconds),
    mergeSeconds: w.mergeSeconds,
    evalSeconds: ev.seconds,
    bytesSent,
    bytesReceived,
    samplesPerSecond: w.seconds > 0 ? samples / w.seconds : 0,
    trainersReporting: new Set(u.map((x) => x.slot)).size,
    time: new Date().toISOString(),
    version: w.version,
    staleness: mean((x) => x.staleness),
    maxStaleness: u.reduce((m, x) => Math.max(m, x.staleness), 0),
    meanWeight: mean((x) => x.weight),
  };
}

/** Why an update cannot be used, or null. */
function checkUpdate(
  msg: MessageOf<'update'>,
  h: SlotHolder<WebSocket>,
  round: number,
  collector: RoundCollector<ReceivedUpdate> | null,
  assignments: Map<number, Assignment>,
  expectedShapes: (a: Assignment) => { name: string; shape: number[] }[],
  job: string,
): string | null {
  if (msg.job !== job) return `job ${msg.job} is not ${job}`;
  if (!collector || msg.round !== round) return `round ${msg.round} is not the current round ${collector ? round : '(none running)'}`;
  if (collector.has(h.slot)) return `a second update for round ${round}`;
  const a = assignments.get(h.slot);
  if (!a) return `slot ${h.slot} has no task this round`;
  if (msg.rank !== a.rank) return `rank ${msg.rank} is not the rank ${a.rank} this trainer was given`;
  return checkUpdateContent(msg, expectedShapes(a));
}

function roundRecord(p: {
  runId: string;
  config: Experiment;
  round: number;
  ev: { loss: number; accuracy: number; seconds: number };
  updates: ReceivedUpdate[];
  t0: number;
  mergeSeconds: number;
  bytesSent: number;
  bytesReceived: number;
}): RoundRecord {
  const { updates } = p;
  const samples = updates.reduce((n, u) => n + u.numSamples, 0);
  const trainSeconds = updates.reduce((m, u) => Math.max(m, u.trainSeconds), 0);
  const collectSeconds = updates.length ? Math.max(...updates.map((u) => u.receivedAt)) - p.t0 : 0;
  return {
    kind: 'round',
    runId: p.runId,
    ...runKeyFields(p.config),
    round: p.round,
    testLoss: p.ev.loss,
    testAccuracy: p.ev.accuracy,
    trainLoss: updates.length ? updates.reduce((s, u) => s + u.trainLoss * u.numSamples, 0) / samples : null,
    roundSeconds: now() - p.t0,
    trainSeconds,
    transferSeconds: Math.max(0, collectSeconds - trainSeconds),
    mergeSeconds: p.mergeSeconds,
    evalSeconds: p.ev.seconds,
    bytesSent: p.bytesSent,
    bytesReceived: p.bytesReceived,
    samplesPerSecond: updates.reduce((s, u) => s + u.samplesPerSecond, 0),
    trainersReporting: updates.length,
    time: new Date().toISOString(),
  };
}
