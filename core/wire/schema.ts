/**
 * The wire protocol's messages, one zod schema each, grouped by the direction they travel. The
 * TypeScript types are inferred from the schemas, so a sender cannot build a message the receiver's
 * validator would not accept, and the validator is the schema (core/wire/codec.ts runs it).
 * Tensors are { name, shape, data: Float32Array }: checked with instanceof and one SIMD scan for
 * non-finite values (core/compute/simd-arrays.ts), never copied.
 */
import { z } from 'zod';
import { StragglerSchema, TrainSchema } from '../config.ts';
import { isErrorCode, type ErrorCode } from '../errors.ts';
import { StepReportSchema, TrainerRoundStatsSchema } from '../training/metrics-schema.ts';
import { firstNonFinite } from '../compute/simd-arrays.ts';

// ---- limits: a peer cannot make a receiver allocate or loop without bound ----------------------

export const MAX_TENSORS = 1024;
export const MAX_RANK = 8;
export const MAX_PEERS = 4096;
const MAX_TEXT = 4096;
const MAX_NAME = 256;
const MAX_ERROR_TEXT = 65536;

// ---- fields ----------------------------------------------------------------------------------

const NON_EMPTY = 'must be a non-empty string';
const text = (max = MAX_TEXT) => z.string({ error: NON_EMPTY }).min(1, { error: NON_EMPTY }).max(max);
const UINT = 'must be a non-negative integer';
const uint = z.int({ error: UINT }).min(0, { error: UINT });
const finite = z.number({ error: 'must be a finite number' });

const errorCode = z.custom<ErrorCode>(isErrorCode, { error: 'must be a known FEDSLICE_ERR_ code' });

const float32 = z.custom<Float32Array>((v) => v instanceof Float32Array, { error: 'must be a Float32Array' });

/** Custom issues carry the error code a receiver reports (default FEDSLICE_ERR_MESSAGE). */
export interface WireIssueParams {
  code: ErrorCode;
}

const Tensor = z
  .object({
    name: text(MAX_NAME),
    shape: z.array(uint).max(MAX_RANK),
    data: float32,
  })
  .check((ctx) => {
    const { name, shape, data } = ctx.value;
    let size = 1;
    for (const d of shape) size *= d;
    if (data.length !== size) {
      ctx.issues.push({ code: 'custom', input: ctx.value, message: `is tensor ${name} with ${data.length} values, but shape [${shape}] needs ${size}` });
      return;
    }
    const i = firstNonFinite(data);
    if (i >= 0) {
      const params: WireIssueParams = { code: 'FEDSLICE_ERR_NONFINITE' };
      ctx.issues.push({ code: 'custom', input: ctx.value, params, message: `is tensor ${name} with a non-finite value (${data[i]}) at index ${i}` });
    }
  });
const tensors = z.array(Tensor).max(MAX_TENSORS);

function withoutUndefined(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined));
}

const Role = z.enum(['aggregator', 'trainer', 'observer']);
export type Role = z.output<typeof Role>;

const Peer = z.object({ id: text(), role: Role, address: text().optional() });
export type Peer = z.output<typeof Peer>;

const RunState = z.enum(['waiting', 'training', 'completed', 'failed']);
export type RunState = z.output<typeof RunState>;

/**
 * A task's training recipe: the config's train section with every field explicit (defaults are
 * the aggregator's business), the run's seed and, for a simulated straggler, its slowdown. A field
 * sent as undefined counts as missing, so no default can stand in for it.
 */
const TaskHyper = z.preprocess(
  withoutUndefined,
  TrainSchema.required()
    .partial({ maxStepsPerEpoch: true })
    .extend({ seed: uint, slowdown: StragglerSchema.shape.slowdown.optional() }),
);
export type TaskHyper = z.output<typeof TaskHyper>;

/** `stats`: the training call's step latency and memory (core/training/metrics-schema.ts). */
const TrainMetrics = z.object({ trainLoss: finite, trainSeconds: finite, samplesPerSecond: finite, steps: uint, stats: TrainerRoundStatsSchema.optional() });
export type TrainMetrics = z.output<typeof TrainMetrics>;

// ---- messages --------------------------------------------------------------------------------

/**
 * Any role -> metaserver: who it is; the aggregator also gives the address of its own server. The
 * job token is not here: it travels in the upgrade request (core/wire/token.ts).
 */
const Hello = z.object({ type: z.literal('hello'), job: text(), role: Role, id: text(), address: text().optional() });

/** Aggregator -> metaserver -> observers of the job. */
const Status = z.object({ type: z.literal('status'), job: text(), state: RunState, round: uint, rounds: uint, message: text().optional() });
export type StatusMessage = z.output<typeof Status>;

const Welcome = z.object({ type: z.literal('welcome'), job: text(), peers: z.array(Peer).max(MAX_PEERS) });
const PeerJoined = z.object({ type: z.literal('peer-joined'), job: text(), peer: Peer });
const PeerLeft = z.object({ type: z.literal('peer-left'), job: text(), peer: Peer, reason: z.enum(['closed', 'timeout']) });

/** A refusal or a report; `round` when it answers a round's message. */
const ErrorMsg = z.object({ type: z.literal('error'), code: errorCode, message: text(MAX_ERROR_TEXT), round: uint.optional() });

/** Trainer -> aggregator; the job token travels in the upgrade request. */
const Join = z.object({ type: z.literal('join'), job: text(), id: text(), shard: uint.optional() });
const Joined = z.object({ type: z.literal('joined'), job: text(), id: text(), shard: uint, worldSize: uint });

/**
 * `version`: async mode, the global model version the weights are. `seq`: async mode, the task's
 * sequence number for its slot; the update answering it carries both back.
 */
const Task = z.object({
  type: z.literal('task'),
  job: text(),
  round: uint,
  version: uint.optional(),
  seq: uint.optional(),
  rank: uint,
  worldSize: uint,
  mode: z.enum(['slice', 'fedavg', 'async']),
  hyper: TaskHyper,
  weights: tensors,
});

const Update = z.object({
  type: z.literal('update'),
  job: text(),
  round: uint,
  version: uint.optional(),
  seq: uint.optional(),
  rank: uint,
  numSamples: uint,
  metrics: TrainMetrics,
  delta: tensors,
});

/**
 * Flow control of updates. A trainer whose update is ready announces it with `ready` (the ids of
 * the task it answers) and writes the update only when the aggregator answers with `grant` for the
 * same task. The aggregator grants a few at a time and grants the next once an update is merged or
 * its sender is gone, so it holds a few updates in its receive buffers instead of every trainer's.
 */
const Ready = z.object({ type: z.literal('ready'), job: text(), round: uint, version: uint.optional(), seq: uint.optional(), rank: uint });
const Grant = z.object({ type: z.literal('grant'), job: text(), round: uint, seq: uint.optional() });

/**
 * A point of the step log, sent while the task trains (every log.everySteps steps): which task
 * (`round`, and `seq` in async mode, as its update will carry), the slot's global step in the run,
 * and what the trainer measured over the interval.
 */
const Steps = z.object({
  type: z.literal('steps'),
  job: text(),
  round: uint,
  seq: uint.optional(),
  rank: uint,
  globalStep: uint,
  point: StepReportSchema,
});
export type StepsMessage = z.output<typeof Steps>;

const Done = z.object({ type: z.literal('done'), job: text(), reason: z.enum(['completed', 'failed']), message: text().optional() });

// ---- directions ------------------------------------------------------------------------------

type MessageSchema = z.ZodObject<{ type: z.ZodLiteral<string> } & z.ZodRawShape>;

/** The messages one kind of connection carries one way. */
export interface Direction<S extends z.ZodType = z.ZodType> {
  /** Says where a message travels, for error lines. */
  name: string;
  schema: S;
  types: ReadonlySet<string>;
}

function direction<const Options extends readonly [MessageSchema, ...MessageSchema[]]>(name: string, options: Options) {
  return {
    name,
    schema: z.discriminatedUnion('type', options),
    types: new Set(options.map((o) => o.shape.type.value)),
  };
}

export const toMetaserver = direction('a role to the metaserver', [Hello, Status]);
export const fromMetaserver = direction('the metaserver to a role', [Welcome, PeerJoined, PeerLeft, Status, ErrorMsg]);
export const trainerToAggregator = direction('a trainer to its aggregator', [Join, Ready, Update, Steps]);
export const aggregatorToTrainer = direction('an aggregator to its trainers', [Joined, Task, Grant, Done, ErrorMsg]);

export type MessageIn<D extends Direction> = z.output<D['schema']>;

export type ToMetaserver = MessageIn<typeof toMetaserver>;
export type FromMetaserver = MessageIn<typeof fromMetaserver>;
export type TrainerToAggregator = MessageIn<typeof trainerToAggregator>;
export type AggregatorToTrainer = MessageIn<typeof aggregatorToTrainer>;

export type Message = ToMetaserver | FromMetaserver | TrainerToAggregator | AggregatorToTrainer;
export type MessageType = Message['type'];
/** The one message of type T (status and error are the same schema in both their directions). */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** Every type any direction carries, to tell a misdirected message from an unknown one. */
export const MESSAGE_TYPES: ReadonlySet<string> = new Set([toMetaserver, fromMetaserver, trainerToAggregator, aggregatorToTrainer].flatMap((d) => [...d.types]));
