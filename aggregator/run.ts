/**
 * One aggregator run, in Flower's Server.fit shape: plan the run (fresh, resumed or nothing to
 * do), start its recorder, serve trainers, register with the metaserver, run the round loop,
 * record how it ended. Everything it waits for is an event: trainers joining, updates arriving,
 * trainers leaving, the round timer, a signal.
 */
import type { WebSocket } from 'ws';
import type { Experiment } from '../core/config.ts';
import { alexnetLayers, type LayerSpec } from '../core/model/spec.ts';
import { FedAvgRule, makeRule } from '../core/aggregation/rules.ts';
import { FedsliceError } from '../core/errors.ts';
import { totalBytes } from '../core/model/tensor.ts';
import { initBackend, type BackendInfo } from '../core/compute/backend.ts';
import { evaluate } from '../core/training/evaluate.ts';
import { loadForAggregator } from '../core/data/load.ts';
import { dataStatistics } from '../core/data/statistics.ts';
import type { LabelSet } from '../core/data/types.ts';
import { ResultsStore } from '../core/results/store.ts';
import { runEnvironment } from '../core/results/environment.ts';
import { maxFrameBytes } from '../core/wire/codec.ts';
import type { ClientTls, ServerTls } from '../core/wire/tls.ts';
import type { AdmissionLimits } from '../core/wire/admission.ts';
import { connectMetaserver } from '../metaserver/client.ts';
import { TrainerRegistry } from './registry.ts';
import { planRun, type RunStart } from './plan.ts';
import { RunRecorder } from './recorder.ts';
import { SocketOutbox } from './outbox.ts';
import { startTrainerServer } from './trainer-server.ts';
import type { FederationLoop, LoopContext } from './federation-loop.ts';
import { SyncLoop } from './sync-loop.ts';
import { AsyncLoop } from './async-loop.ts';
import { Interrupted, withDeadline } from './waits.ts';
import { markMemory } from '../core/compute/memory-probe.ts';

export { checkpointPath } from './plan.ts';

/**
 * Images per forward pass of the aggregator's evaluation, at most. One pass holds the event loop
 * (wasm computes synchronously) while trainers' updates, departures and the metaserver's pings
 * wait; it runs beside training now, so passes stay short: 500 images took 9 s on a loaded 2-core
 * machine. The pass's activations are also most of what the evaluation adds to the wasm heap, which
 * never shrinks: at full width 0.18 GB at 32 images against 0.32 at 64, for the same CPU seconds
 * (8.1-8.8 s for 64 images either way, interleaved in one process, under load). The batch size
 * changes no accuracy and the loss only in its last float32 bits (it is left out of the run key).
 */
const AGGREGATOR_EVAL_BATCH = 32;

/** The images per forward pass the aggregator evaluates with under `config`. */
export function aggregatorEvalBatch(config: Experiment): number {
  return Math.min(config.eval.batchSize, AGGREGATOR_EVAL_BATCH);
}

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

/** What an aggregator loads that depends on its config alone: the compute backend and its data. */
export interface AggregatorStart {
  backend: BackendInfo;
  data: ReturnType<typeof loadForAggregator>;
}

/** Loads the backend and the data; a role started ahead of its run does it before it is told to go. */
export async function prepareAggregator(config: Experiment): Promise<AggregatorStart> {
  const backend = await initBackend(config.backend);
  const data = loadForAggregator(config.dataset, config.seed);
  checkLabels(data.test, config.model.numClasses);
  return { backend, data };
}

/** `prepared`: what `prepareAggregator` loaded ahead; otherwise it loads once the plan says there is a run to do. */
export async function runAggregator(o: AggregatorOptions, prepared?: AggregatorStart): Promise<'completed' | 'already-completed'> {
  const { config, log } = o;
  const layers = alexnetLayers(config.model);
  const store = new ResultsStore(o.results);
  const plan = await planRun({ config, layers, store, resume: o.resume, force: o.force, log });
  if (plan.kind === 'already-completed') return 'already-completed';

  const { backend, data } = prepared ?? (await prepareAggregator(config));
  markMemory('aggregator', plan.firstRound, 'ready');
  const registry = new TrainerRegistry<WebSocket>(config.federation.worldSize);
  registry.restore(plan.slots);
  const recorder = new RunRecorder({
    store,
    config,
    layers,
    start: plan,
    environment: runEnvironment(backend),
    data: dataStatistics(config.dataset, data, config.federation.worldSize, config.seed),
    slots: () => registry.slots(),
    log,
  });
  const outbox = new SocketOutbox();
  const loop = makeLoop(layers, plan, {
    config,
    job: o.job,
    registry,
    outbox,
    log,
    evaluate: (weights) => evaluate({ layers, weights, data: data.test, batchSize: aggregatorEvalBatch(config) }),
    checkpoint: (weights, draft) => recorder.checkpoint(weights, draft),
    record: (trained, ev, overlapSeconds) => recorder.record(trained, ev, overlapSeconds),
  });

  const server = await startTrainerServer({
    host: o.host,
    port: o.port,
    ...(o.advertise ? { advertise: o.advertise } : {}),
    ...(o.tls ? { tls: o.tls } : {}),
    ...(o.admission ? { admission: o.admission } : {}),
    job: o.job,
    token: o.token,
    maxPayload: maxFrameBytes(totalBytes(plan.weights)),
    registry,
    loop,
    onSteps: (h, msg) => recorder.step(h.slot, msg),
    outbox,
    log,
  });
  log(`aggregator: job ${o.job}: listening for trainers on ${server.url}`);
  const meta = await connectMetaserver({
    url: o.metaserver,
    job: o.job,
    role: 'aggregator',
    id: `aggregator-${process.pid}`,
    token: o.token,
    address: server.url,
    ...(o.clientTls ? { tls: o.clientTls } : {}),
  }).catch(async (e: unknown) => {
    await server.close();
    throw e;
  });

  try {
    // Recorded only once the run can actually start: a wrong URL or token leaves no record behind.
    recorder.start((s) => meta.sendStatus(s));
    await waitForTrainers(registry, o.job, config.federation.roundTimeoutS, o.signal, log);
    await loop.run(o.signal);
    server.sendDone('completed');
    recorder.finish('completed', undefined, loop.summary());
    return 'completed';
  } catch (e) {
    const message = (e as Error).message;
    server.sendDone('failed', message);
    try {
      recorder.finish(e instanceof Interrupted ? 'interrupted' : 'failed', message, loop.summary());
    } catch (recordError) {
      // The store may be what failed (a full disk): the trainers and the sweep still hear why.
      log(`aggregator: could not record the run's end: ${(recordError as Error).message}`);
    }
    throw e;
  } finally {
    meta.close();
    await server.close();
  }
}

/** Async mode is a loop over full replicas (fedavg's rule); slice and fedavg run in rounds. */
function makeLoop(layers: LayerSpec[], start: RunStart, ctx: LoopContext<WebSocket>): FederationLoop<WebSocket> {
  const fed = ctx.config.federation;
  if (fed.mode === 'async') return new AsyncLoop(ctx, new FedAvgRule(layers), start);
  return new SyncLoop(ctx, makeRule(layers, { ...fed, mode: fed.mode }), start);
}

function waitForTrainers(registry: TrainerRegistry<WebSocket>, job: string, timeoutS: number, signal: AbortSignal, log: (line: string) => void): Promise<void> {
  log(`aggregator: waiting for ${registry.worldSize} trainers`);
  return withDeadline(
    registry.whenFull(),
    timeoutS * 1000,
    () =>
      new FedsliceError(
        'FEDSLICE_ERR_JOIN_TIMEOUT',
        `only ${registry.connected().length} of ${registry.worldSize} trainers joined job ${job} within roundTimeoutS=${timeoutS}s; start the missing trainers with --job ${job} and the same token`,
      ),
    signal,
  );
}

function checkLabels(set: LabelSet, numClasses: number): void {
  let max = 0;
  for (let i = 0; i < set.count; i++) if (set.labels[i] > max) max = set.labels[i];
  if (max >= numClasses) {
    throw new FedsliceError('FEDSLICE_ERR_CLASSES', `the data has label ${max} but model.numClasses is ${numClasses}; set model.numClasses to at least ${max + 1}`);
  }
}
