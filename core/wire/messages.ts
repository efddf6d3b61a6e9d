/**
 * The wire protocol: typed messages per direction, encoded as binary msgpack frames.
 * Tensors travel as { name, shape, data: Float32Array }. msgpackr's default Packr would not
 * keep a Float32Array (it writes raw bytes that come back as a Buffer); `moreTypes` gives it a
 * typed-array extension that round-trips bit-exactly. `decode` never throws: every field of every
 * message is checked, and a bad frame comes back as { ok: false, code, error }.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { NamedTensor } from '../model/tensor.ts';
import type { TrainHyper } from '../training/train.ts';

// ---- messages --------------------------------------------------------------------------------

export type Role = 'aggregator' | 'trainer' | 'observer';

export interface Peer {
  id: string;
  role: Role;
  address?: string;
}

/** Any role -> metaserver. */
export interface HelloMessage {
  type: 'hello';
  job: string;
  role: Role;
  id: string;
  token: string;
  /** The aggregator's own server, which trainers connect to. */
  address?: string;
}

export type RunState = 'waiting' | 'training' | 'completed' | 'failed';

/** Aggregator -> metaserver -> observers of the job. */
export interface StatusMessage {
  type: 'status';
  job: string;
  state: RunState;
  round: number;
  rounds: number;
  message?: string;
}

export interface WelcomeMessage {
  type: 'welcome';
  job: string;
  peers: Peer[];
}

export interface PeerJoinedMessage {
  type: 'peer-joined';
  job: string;
  peer: Peer;
}

export interface PeerLeftMessage {
  type: 'peer-left';
  job: string;
  peer: Peer;
  reason: 'closed' | 'timeout';
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  round?: number;
}

export interface JoinMessage {
  type: 'join';
  job: string;
  id: string;
  token: string;
  shard?: number;
}

export interface TrainMetrics {
  trainLoss: number;
  trainSeconds: number;
  samplesPerSecond: number;
  steps: number;
}

export interface UpdateMessage {
  type: 'update';
  job: string;
  round: number;
  /** async mode: the sequence number of the task this update answers. */
  seq?: number;
  /** async mode: the model version the task carried. */
  version?: number;
  rank: number;
  delta: NamedTensor[];
  numSamples: number;
  metrics: TrainMetrics;
}

export interface JoinedMessage {
  type: 'joined';
  job: string;
  id: string;
  shard: number;
  worldSize: number;
}

/**
 * The training recipe of a task: what core/training/train.ts takes, plus the run's seed and, for simulated
 * stragglers, how many times longer the trainer should take.
 */
export type TaskHyper = TrainHyper & { seed: number; slowdown?: number };

export interface TaskMessage {
  type: 'task';
  job: string;
  /** The evaluation index this task counts toward (async: the evaluation window open when it was sent). */
  round: number;
  /** async mode: this trainer slot's task counter (1, 2, ...); its update echoes it. */
  seq?: number;
  rank: number;
  worldSize: number;
  mode: 'slice' | 'fedavg' | 'async';
  /** async mode: the global model version these weights are. */
  version?: number;
  weights: NamedTensor[];
  hyper: TaskHyper;
}

export interface DoneMessage {
  type: 'done';
  job: string;
  reason: 'completed' | 'failed';
  message?: string;
}

export type ToMetaserver = HelloMessage | StatusMessage;
export type FromMetaserver = WelcomeMessage | PeerJoinedMessage | PeerLeftMessage | StatusMessage | ErrorMessage;
export type TrainerToAggregator = JoinMessage | UpdateMessage;
export type AggregatorToTrainer = JoinedMessage | TaskMessage | DoneMessage | ErrorMessage;
export type Message = ToMetaserver | FromMetaserver | TrainerToAggregator | AggregatorToTrainer;
export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

// ---- codec -----------------------------------------------------------------------------------

const packr = new Packr({ moreTypes: true, useRecords: false });
const unpackr = new Unpackr({ moreTypes: true, useRecords: false, mapsAsObjects: true });

export function encode(msg: Message): Uint8Array {
  return packr.pack(msg);
}

export type DecodeResult = { ok: true; msg: Message } | { ok: false; code: string; error: string };

export function decode(frame: Uint8Array): DecodeResult {
  let value: unknown;
  try {
    value = unpackr.unpack(frame);
  } catch (e) {
    return { ok: false, code: 'FEDSLICE_ERR_FRAME', error: `not a msgpack frame (${(e as Error).message})` };
  }
  try {
    return { ok: true, msg: validateMessage(value) };
  } catch (e) {
    if (e instanceof WireError) return { ok: false, code: e.code, error: e.message };
    return { ok: false, code: 'FEDSLICE_ERR_FRAME', error: String(e) };
  }
}

// ---- validation ------------------------------------------------------------------------------

class WireError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Obj = Record<string, unknown>;

const bad = (what: string): never => {
  throw new WireError('FEDSLICE_ERR_MESSAGE', what);
};

function obj(v: unknown, what: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) bad(`${what} is not an object`);
  return v as Obj;
}

function str(o: Obj, k: string, ctx: string, max = 4096): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) bad(`${ctx}.${k} must be a non-empty string`);
  return v as string;
}

function optStr(o: Obj, k: string, ctx: string): string | undefined {
  return o[k] === undefined ? undefined : str(o, k, ctx);
}

function uint(o: Obj, k: string, ctx: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${ctx}.${k} must be a non-negative integer`);
  return v as number;
}

function optUint(o: Obj, k: string, ctx: string): number | undefined {
  return o[k] === undefined ? undefined : uint(o, k, ctx);
}

function num(o: Obj, k: string, ctx: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${ctx}.${k} must be a finite number`);
  return v as number;
}

function bool(o: Obj, k: string, ctx: string): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') bad(`${ctx}.${k} must be true or false`);
  return v as boolean;
}

function oneOf<T extends string>(o: Obj, k: string, ctx: string, values: readonly T[]): T {
  const v = o[k];
  if (typeof v !== 'string' || !values.includes(v as T)) bad(`${ctx}.${k} must be one of ${values.join(', ')}`);
  return v as T;
}

const MAX_TENSORS = 1024;
const MAX_RANK = 8;

function tensors(o: Obj, k: string, ctx: string): NamedTensor[] {
  const list = o[k];
  if (!Array.isArray(list) || list.length > MAX_TENSORS) bad(`${ctx}.${k} must be a list of tensors`);
  return (list as unknown[]).map((raw, i) => {
    const where = `${ctx}.${k}[${i}]`;
    const t = obj(raw, where);
    const name = str(t, 'name', where, 256);
    const shape = t.shape;
    if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`${where} (${name}).shape must be a list of non-negative integers`);
    }
    const data = t.data;
    if (!(data instanceof Float32Array)) bad(`${where} (${name}).data must be a Float32Array`);
    const f = data as Float32Array;
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    if (f.length !== size) bad(`${where} (${name}) has ${f.length} values but shape [${shape}] needs ${size}`);
    for (let j = 0; j < f.length; j++) {
      if (!Number.isFinite(f[j])) {
        throw new WireError('FEDSLICE_ERR_NONFINITE', `${ctx}: tensor ${name} has a non-finite value (${f[j]}) at index ${j}`);
      }
    }
    return { name, shape: shape as number[], data: f };
  });
}

function peer(v: unknown, ctx: string): Peer {
  const p = obj(v, ctx);
  const address = optStr(p, 'address', ctx);
  return { id: str(p, 'id', ctx), role: oneOf(p, 'role', ctx, ROLES), ...(address ? { address } : {}) };
}

const ROLES = ['aggregator', 'trainer', 'observer'] as const;
const STATES = ['waiting', 'training', 'completed', 'failed'] as const;

function validateMessage(v: unknown): Message {
  const o = obj(v, 'message');
  const type = o.type;
  const ctx = String(type);
  switch (type) {
    case 'hello': {
      const address = optStr(o, 'address', ctx);
      return { type, job: str(o, 'job', ctx), role: oneOf(o, 'role', ctx, ROLES), id: str(o, 'id', ctx), token: str(o, 'token', ctx), ...(address ? { address } : {}) };
    }
    case 'status': {
      const message = optStr(o, 'message', ctx);
      return { type, job: str(o, 'job', ctx), state: oneOf(o, 'state', ctx, STATES), round: uint(o, 'round', ctx), rounds: uint(o, 'rounds', ctx), ...(message ? { message } : {}) };
    }
    case 'welcome': {
      if (!Array.isArray(o.peers)) bad('welcome.peers must be a list');
      return { type, job: str(o, 'job', ctx), peers: (o.peers as unknown[]).map((p, i) => peer(p, `welcome.peers[${i}]`)) };
    }
    case 'peer-joined':
      return { type, job: str(o, 'job', ctx), peer: peer(o.peer, `${ctx}.peer`) };
    case 'peer-left':
      return { type, job: str(o, 'job', ctx), peer: peer(o.peer, `${ctx}.peer`), reason: oneOf(o, 'reason', ctx, ['closed', 'timeout'] as const) };
    case 'error': {
      const round = optUint(o, 'round', ctx);
      return { type, code: str(o, 'code', ctx), message: str(o, 'message', ctx, 65536), ...(round !== undefined ? { round } : {}) };
    }
    case 'join': {
      const shard = optUint(o, 'shard', ctx);
      return { type, job: str(o, 'job', ctx), id: str(o, 'id', ctx), token: str(o, 'token', ctx), ...(shard !== undefined ? { shard } : {}) };
    }
    case 'update': {
      const m = obj(o.metrics, 'update.metrics');
      const version = optUint(o, 'version', ctx);
      const seq = optUint(o, 'seq', ctx);
      return {
        type,
        job: str(o, 'job', ctx),
        round: uint(o, 'round', ctx),
        ...(seq !== undefined ? { seq } : {}),
        ...(version !== undefined ? { version } : {}),
        rank: uint(o, 'rank', ctx),
        numSamples: uint(o, 'numSamples', ctx),
        metrics: {
          trainLoss: num(m, 'trainLoss', 'update.metrics'),
          trainSeconds: num(m, 'trainSeconds', 'update.metrics'),
          samplesPerSecond: num(m, 'samplesPerSecond', 'update.metrics'),
          steps: uint(m, 'steps', 'update.metrics'),
        },
        delta: tensors(o, 'delta', ctx),
      };
    }
    case 'joined':
      return { type, job: str(o, 'job', ctx), id: str(o, 'id', ctx), shard: uint(o, 'shard', ctx), worldSize: uint(o, 'worldSize', ctx) };
    case 'task': {
      const h = obj(o.hyper, 'task.hyper');
      const maxSteps = optUint(h, 'maxStepsPerEpoch', 'task.hyper');
      const version = optUint(o, 'version', ctx);
      const seq = optUint(o, 'seq', ctx);
      const slowdown = h.slowdown === undefined ? undefined : num(h, 'slowdown', 'task.hyper');
      if (slowdown !== undefined && slowdown < 1) bad(`task.hyper.slowdown is ${slowdown}; it must be at least 1`);
      return {
        type,
        job: str(o, 'job', ctx),
        round: uint(o, 'round', ctx),
        ...(seq !== undefined ? { seq } : {}),
        ...(version !== undefined ? { version } : {}),
        rank: uint(o, 'rank', ctx),
        worldSize: uint(o, 'worldSize', ctx),
        mode: oneOf(o, 'mode', ctx, ['slice', 'fedavg', 'async'] as const),
        hyper: {
          learningRate: num(h, 'learningRate', 'task.hyper'),
          weightDecay: num(h, 'weightDecay', 'task.hyper'),
          batchSize: uint(h, 'batchSize', 'task.hyper'),
          epochs: uint(h, 'epochs', 'task.hyper'),
          augment: bool(h, 'augment', 'task.hyper'),
          seed: uint(h, 'seed', 'task.hyper'),
          ...(maxSteps !== undefined ? { maxStepsPerEpoch: maxSteps } : {}),
          ...(slowdown !== undefined ? { slowdown } : {}),
        },
        weights: tensors(o, 'weights', ctx),
      };
    }
    case 'done': {
      const message = optStr(o, 'message', ctx);
      return { type, job: str(o, 'job', ctx), reason: oneOf(o, 'reason', ctx, ['completed', 'failed'] as const), ...(message ? { message } : {}) };
    }
    default:
      return bad(`unknown message type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
}

// ---- helpers for receivers -------------------------------------------------------------------

/** null when an update's contents are usable for a task with these tensors; else a one-line reason. */
export function checkUpdateContent(msg: UpdateMessage, expected: { name: string; shape: number[] }[]): string | null {
  if (!Number.isInteger(msg.numSamples) || msg.numSamples <= 0) return `numSamples ${msg.numSamples} is not a positive integer`;
  const mismatch = checkTensorsMatch(expected, msg.delta);
  if (mismatch) return mismatch;
  const m = msg.metrics;
  if (![m.trainLoss, m.trainSeconds, m.samplesPerSecond].every(Number.isFinite)) return 'metrics are not finite numbers';
  return null;
}

/** null when `got` has exactly the expected names, order and shapes; else a one-line reason. */
export function checkTensorsMatch(expected: { name: string; shape: number[] }[], got: NamedTensor[]): string | null {
  if (got.length !== expected.length) return `expected ${expected.length} tensors, got ${got.length}`;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const g = got[i];
    if (g.name !== e.name) return `tensor ${i} is ${g.name}, expected ${e.name}`;
    if (g.shape.length !== e.shape.length || g.shape.some((d, j) => d !== e.shape[j])) {
      return `tensor ${e.name} has shape [${g.shape}], expected [${e.shape}]`;
    }
  }
  return null;
}

/** Frame limit for a model of `modelBytes`: the whole model plus room for the envelope. */
export function maxFrameBytes(modelBytes: number): number {
  return Math.ceil(modelBytes * 1.05) + (1 << 20);
}
