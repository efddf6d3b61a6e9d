/**
 * A trainer: finds its job's aggregator through the metaserver, joins with the job token, trains
 * each task on its own shard and uploads the delta. If the aggregator's connection drops it waits
 * for the aggregator to register again (a restart with --resume) and rejoins with the same id.
 */
import WebSocket from 'ws';
import type { Experiment } from '../core/config.ts';
import { alexnetLayers, parameterCount, type LayerSpec } from '../core/model/spec.ts';
import { FedsliceError, isFatalForTrainer } from '../core/errors.ts';
import { currentBackend, initBackend } from '../core/compute/backend.ts';
import { stepsPerCall, trainModel } from '../core/training/train.ts';
import { LocalModel } from '../core/training/local-model.ts';
import { markMemory } from '../core/compute/memory-probe.ts';
import { loadTrainSet, shardIndices } from '../core/data/load.ts';
import type { ImageSet } from '../core/data/types.ts';
import { decode, maxFrameBytes } from '../core/wire/codec.ts';
import { aggregatorToTrainer, type MessageOf, type TrainerToAggregator } from '../core/wire/schema.ts';
import { frameBytes, receiveFragments, sendToAggregator, unmaskedFrames, type OnWritten } from '../core/wire/socket.ts';
import { UpdateGate } from '../core/wire/update-gate.ts';
import { connectMetaserver } from '../metaserver/client.ts';
import { credentialHeaders, wrongTokenMessage } from '../core/wire/token.ts';
import { isPlainToTlsRefusal, plainToTlsMessage, tlsConnectError, type ClientTls } from '../core/wire/tls.ts';

export interface TrainerOptions {
  config: Experiment;
  metaserver: string;
  job: string;
  token: string;
  id: string;
  shard?: number;
  /** CA and verification for wss:// metaserver and aggregator. */
  tls?: ClientTls;
  signal: AbortSignal;
  log: (line: string) => void;
}

type SessionEnd = { kind: 'done'; msg: MessageOf<'done'> } | { kind: 'lost'; reason: string } | { kind: 'refused'; error: FedsliceError };

/** What every session of one trainer process shares. */
interface Trainer {
  o: TrainerOptions;
  layers: LayerSpec[];
  train: ImageSet;
  maxPayload: number;
  /** Variables and optimizer state, allocated once and reused by every task. */
  model: LocalModel;
}

type Send = (m: TrainerToAggregator, onWritten?: OnWritten) => void;

/** What a trainer loads that depends on its config alone: the compute backend, then its training images. */
export interface TrainerStart {
  train: ImageSet;
}

/** Loads the backend and the training set; a role started ahead of its run does it before it is told to go. */
export async function prepareTrainer(config: Experiment): Promise<TrainerStart> {
  await initBackend(config.backend);
  return { train: loadTrainSet(config.dataset, config.seed) };
}

/** `prepared`: what `prepareTrainer` loaded ahead. */
export async function runTrainer(o: TrainerOptions, prepared?: TrainerStart): Promise<void> {
  const { config, log } = o;
  const { train } = prepared ?? (await prepareTrainer(config));
  const layers = alexnetLayers(config.model);
  // fedavg tasks carry the full model: size frames for it.
  const t: Trainer = { o, layers, train, maxPayload: maxFrameBytes(parameterCount(layers) * Float32Array.BYTES_PER_ELEMENT), model: new LocalModel() };
  const waitS = config.federation.roundTimeoutS;

  const meta = await connectMetaserver({ url: o.metaserver, job: o.job, role: 'trainer', id: o.id, token: o.token, ...(o.tls ? { tls: o.tls } : {}) });
  const stop = new Promise<never>((_, reject) => {
    const fail = () => reject(new FedsliceError('FEDSLICE_ERR_INTERRUPTED', `interrupted by ${String(o.signal.reason ?? 'signal')}`));
    if (o.signal.aborted) fail();
    o.signal.addEventListener('abort', fail, { once: true });
  });
  stop.catch(() => {});
  try {
    let backoffMs = 200;
    for (;;) {
      log(`trainer ${o.id}: waiting for the aggregator of job ${o.job}`);
      const address = await Promise.race([meta.waitForAggregator(waitS * 1000), stop]);
      const end = await Promise.race([session(t, address), stop]);
      if (end.kind === 'done') {
        if (end.msg.reason === 'completed') {
          log(`trainer ${o.id}: run completed`);
          return;
        }
        throw new FedsliceError('FEDSLICE_ERR_RUN_FAILED', `the aggregator ended the run: ${end.msg.message ?? 'failed'}`);
      }
      if (end.kind === 'refused') throw end.error;
      log(`trainer ${o.id}: lost the aggregator (${end.reason}); will rejoin when it is back`);
      // A dropped connection may come back at the same address before the metaserver notices;
      // the growing pause only spaces out retries, it is not a readiness wait.
      await Promise.race([new Promise((r) => setTimeout(r, backoffMs)), stop]);
      backoffMs = Math.min(backoffMs * 2, 5000);
    }
  } finally {
    meta.close();
    t.model.dispose();
  }
}

/** One connection to the aggregator, from join to done or loss. */
function session(t: Trainer, address: string): Promise<SessionEnd> {
  const { o } = t;
  return new Promise<SessionEnd>((resolve) => {
    const ws = new WebSocket(address, { maxPayload: t.maxPayload, headers: credentialHeaders(o.job, o.token), ...unmaskedFrames, ...o.tls });
    receiveFragments(ws);
    let settled = false;
    const end = (e: SessionEnd) => {
      if (settled) return;
      settled = true;
      resolve(e);
      ws.close();
    };
    const write: Send = (m, onWritten) => void sendToAggregator(ws, m, onWritten);
    // An update waits for the aggregator's grant; everything else is written at once.
    const gate = new UpdateGate(write);
    const send: Send = (m, onWritten) => (m.type === 'update' ? gate.offer(m, onWritten) : write(m, onWritten));
    const onMessage = messageHandler(t, send, gate, end);
    o.signal.addEventListener('abort', () => ws.close(), { once: true });

    ws.on('open', () => send({ type: 'join', job: o.job, id: o.id, ...(o.shard !== undefined ? { shard: o.shard } : {}) }));
    ws.on('message', (data) => onMessage(frameBytes(data)));
    ws.on('close', (code, reason) => end({ kind: 'lost', reason: `closed (${code}${reason.length ? ` ${reason}` : ''})` }));
    ws.on('unexpected-response', (_req, res) => {
      if (isPlainToTlsRefusal(res)) end({ kind: 'refused', error: new FedsliceError('FEDSLICE_ERR_TLS', plainToTlsMessage(address)) });
      else if (res.statusCode === 401) end({ kind: 'refused', error: new FedsliceError('FEDSLICE_ERR_TOKEN', `the aggregator at ${address} refused trainer ${o.id}: ${wrongTokenMessage(o.job)}`) });
      else end({ kind: 'lost', reason: `HTTP ${res.statusCode} instead of a WebSocket upgrade` });
    });
    ws.on('error', (e) => {
      const tls = tlsConnectError(address, e);
      end(tls ? { kind: 'refused', error: tls } : { kind: 'lost', reason: e.message });
    });
  });
}

/** What a session does with each frame from the aggregator: join, train tasks in order, end. */
function messageHandler(t: Trainer, send: Send, gate: UpdateGate, end: (e: SessionEnd) => void): (frame: Uint8Array[]) => void {
  const { o } = t;
  const { config, log } = o;
  let shard: number | null = null;
  let indices: Int32Array | null = null;
  let busy: Promise<void> = Promise.resolve();
  return (frame) => {
    const d = decode(aggregatorToTrainer, frame);
    if (!d.ok) {
      log(`trainer ${o.id}: dropped a bad frame from the aggregator: ${d.error}`);
      return;
    }
    const msg = d.msg;
    switch (msg.type) {
      case 'joined':
        shard = msg.shard;
        indices = shardIndices(t.train, config.dataset, msg.worldSize, shard, config.seed);
        log(`trainer ${o.id}: joined job ${o.job} as shard ${shard} of ${msg.worldSize} (${indices.length} training images)`);
        return;
      case 'task':
        gate.drop();
        // Tasks are handled one at a time, in order.
        busy = busy.then(() => handleTask(t, msg, shard, indices, send)).catch((e) => end({ kind: 'lost', reason: (e as Error).message }));
        return;
      case 'grant':
        if (!gate.granted(msg)) log(`trainer ${o.id}: a grant for round ${msg.round}${msg.seq !== undefined ? ` task ${msg.seq}` : ''} names no update waiting; ignored`);
        return;
      case 'done':
        end({ kind: 'done', msg });
        return;
      case 'error':
        if (isFatalForTrainer(msg.code)) {
          end({ kind: 'refused', error: new FedsliceError(msg.code, `the aggregator refused trainer ${o.id}: ${msg.message}`) });
        } else {
          if (msg.round !== undefined) gate.refused(msg.round);
          log(`trainer ${o.id}: the aggregator reported: ${msg.message}`);
        }
        return;
      default:
        msg satisfies never;
    }
  };
}

/**
 * Trains one task on this trainer's shard and sends the update. The delta is written over the task's
 * own weight arrays (views over the received frame) and sent from there, so a task costs the frame,
 * the model's variables and Adam's moments, and nothing is kept once the update is written out.
 */
async function handleTask(t: Trainer, task: MessageOf<'task'>, shard: number | null, indices: Int32Array | null, send: Send): Promise<void> {
  const { o } = t;
  if (shard === null || !indices) throw new Error('task before joined');
  const who = `trainer ${o.id}`;
  markMemory(who, task.round, 'received');
  const which = task.seq !== undefined ? `round ${task.round} task ${task.seq}` : `round ${task.round}`;
  o.log(`trainer ${o.id}: ${which}: training rank ${task.rank} of ${task.worldSize} (${task.mode}) on shard ${shard}`);
  const ids = { round: task.round, ...(task.seq !== undefined ? { seq: task.seq } : {}), rank: task.rank };
  // the slot's steps before this task: tasks are numbered from 1 (sync: the round; async: seq)
  const stepsBefore = ((task.seq ?? task.round) - 1) * stepsPerCall(task.hyper, indices.length);
  const everySteps = o.config.log.everySteps;
  const result = await trainModel(t.model, {
    layers: t.layers,
    weights: task.weights,
    data: t.train,
    indices,
    hyper: task.hyper,
    // Each shard shuffles and drops out differently, the same way on every run; an async
    // trainer's tasks are told apart by their sequence number.
    seed: task.hyper.seed * 1009 + shard,
    round: task.seq ?? task.round,
    stepLog: {
      ...(everySteps !== undefined ? { everySteps } : {}),
      onReport: (point) => send({ type: 'steps', job: o.job, ...ids, globalStep: stepsBefore + point.step, point }),
    },
    onPhase: (phase) => markMemory(who, task.round, phase),
  });
  // A simulated straggler (federation.stragglers): idle so the task takes `slowdown` times as long.
  const slowdown = task.hyper.slowdown ?? 1;
  if (slowdown > 1) await idle((slowdown - 1) * result.seconds * 1000, o.signal);
  const seconds = result.seconds * slowdown;
  const delta = t.model.deltaInPlace(task.weights);
  markMemory(who, task.round, 'delta');
  send({
    type: 'update',
    job: o.job,
    ...ids,
    ...(task.version !== undefined ? { version: task.version } : {}),
    delta,
    numSamples: result.numSamples,
    metrics: {
      trainLoss: result.trainLoss,
      trainSeconds: seconds,
      samplesPerSecond: result.numSamples / seconds,
      steps: result.steps,
      stats: { ...result.stats, threads: currentBackend()?.threads ?? null },
    },
  }, () => markMemory(who, task.round, 'sent'));
  o.log(`trainer ${o.id}: ${which}: update ready, sent when the aggregator grants it (loss ${result.trainLoss.toFixed(4)}, ${(result.numSamples / seconds).toFixed(0)} samples/s${slowdown > 1 ? `, slowed ${slowdown}x` : ''})`);
}

function idle(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
