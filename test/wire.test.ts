import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { decode, encode, encodeParts, encodeUnchecked, maxFrameBytes } from '../core/wire/codec.ts';
import { tensorReads } from '../core/wire/frame.ts';
import { checkTensorsMatch } from '../core/wire/checks.ts';
import {
  aggregatorToTrainer,
  fromMetaserver,
  MAX_PEERS,
  MAX_RANK,
  MAX_TENSORS,
  toMetaserver,
  trainerToAggregator,
  type AggregatorToTrainer,
  type Direction,
  type FromMetaserver,
  type Message,
  type MessageOf,
  type MessageType,
  type TaskHyper,
  type ToMetaserver,
  type TrainerToAggregator,
} from '../core/wire/schema.ts';
import { frameBytes, receiveFragments, sendFromMetaserver, sendToAggregator, sendToMetaserver, sendToTrainer, unmaskedFrames } from '../core/wire/socket.ts';
import { ERROR_CODES, isFatalForTrainer, type ErrorCode } from '../core/errors.ts';
import { parseExperiment, taskHyperOf, type TrainConfig } from '../core/config.ts';
import type { TrainHyper } from '../core/training/train.ts';

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function update(data: Float32Array, shape = [data.length]): MessageOf<'update'> {
  return {
    type: 'update',
    job: 'j',
    round: 1,
    rank: 0,
    numSamples: 10,
    metrics: { trainLoss: 1, trainSeconds: 2, samplesPerSecond: 3, steps: 4 },
    delta: [{ name: 'conv1.weight', shape, data }],
  };
}

const hyper = { optimizer: 'adam', learningRate: 1e-3, weightDecay: 0, batchSize: 32, epochs: 1, augment: false, seed: 5 } satisfies TaskHyper;
const peer = { id: 't1', role: 'trainer' } as const;

/** One message of every type, as its sender builds it; each must compile against its schema's type. */
const samples: { [T in MessageType]: MessageOf<T> } = {
  hello: { type: 'hello', job: 'j', role: 'aggregator', id: 'a', address: 'ws://127.0.0.1:1' },
  status: { type: 'status', job: 'j', state: 'training', round: 2, rounds: 5, message: 'ok' },
  welcome: { type: 'welcome', job: 'j', peers: [peer, { id: 'a', role: 'aggregator', address: 'ws://h:1' }] },
  'peer-joined': { type: 'peer-joined', job: 'j', peer },
  'peer-left': { type: 'peer-left', job: 'j', peer, reason: 'timeout' },
  error: { type: 'error', code: 'FEDSLICE_ERR_UPDATE', message: 'no', round: 3 },
  join: { type: 'join', job: 'j', id: 't1', shard: 1 },
  ready: { type: 'ready', job: 'j', round: 3, seq: 2, version: 4, rank: 1 },
  grant: { type: 'grant', job: 'j', round: 3, seq: 2 },
  update: {
    ...update(new Float32Array([1, -2])),
    version: 4,
    seq: 7,
    metrics: {
      trainLoss: 1, trainSeconds: 2, samplesPerSecond: 3, steps: 4,
      stats: { steps: 4, stepP50Seconds: 0.1, stepP95Seconds: 0.2, stepP99Seconds: 0.3, dataLoadShare: 0.05, peakRssBytes: 1e9, tensorBytes: 4e7, tensorCount: 60, gpuBytes: null },
    },
  },
  steps: {
    type: 'steps', job: 'j', round: 3, seq: 2, rank: 1, globalStep: 40,
    point: { step: 10, epoch: 0, loss: 2.1, intervalSteps: 5, samples: 160, samplesPerSecond: 120.5, learningRate: 1e-3, time: 1_700_000_000_000 },
  },
  joined: { type: 'joined', job: 'j', id: 't1', shard: 1, worldSize: 2 },
  task: {
    type: 'task', job: 'j', round: 3, version: 17, seq: 2, rank: 1, worldSize: 2, mode: 'async',
    weights: [{ name: 'fc3.bias', shape: [2], data: new Float32Array([1, 2]) }],
    hyper: { ...hyper, maxStepsPerEpoch: 3, slowdown: 2.5 },
  },
  done: { type: 'done', job: 'j', reason: 'failed', message: 'stopped' },
};

const directions: [string, Direction][] = [
  ['toMetaserver', toMetaserver],
  ['fromMetaserver', fromMetaserver],
  ['trainerToAggregator', trainerToAggregator],
  ['aggregatorToTrainer', aggregatorToTrainer],
];
const carries: Record<string, MessageType[]> = {
  toMetaserver: ['hello', 'status'],
  fromMetaserver: ['welcome', 'peer-joined', 'peer-left', 'status', 'error'],
  trainerToAggregator: ['join', 'ready', 'update', 'steps'],
  aggregatorToTrainer: ['joined', 'task', 'grant', 'done', 'error'],
};

function refusal(direction: Direction, value: unknown): { code: ErrorCode; error: string } {
  const d = decode(direction, encodeUnchecked(value));
  if (d.ok) throw new Error(`accepted ${JSON.stringify(value)}`);
  return d;
}

describe('wire codec', () => {
  it('round-trips tensors bit-exactly: -0, denormals, extremes, and a 10M-element tensor', () => {
    const special = new Float32Array([0, -0, 1.401298464324817e-45, -3.4028234663852886e38, 1 / 3, 1e-38]);
    const big = new Float32Array(10_000_000);
    for (let i = 0; i < big.length; i++) big[i] = Math.sin(i) * 1e3;
    for (const [data, frame] of [special, big].flatMap((x) => [[x, encode(update(x))], [x, encodeParts(update(x))]] as const)) {
      const d = decode(trainerToAggregator, frame);
      if (!d.ok || d.msg.type !== 'update') throw new Error('not decoded as an update');
      const got = d.msg.delta[0].data;
      expect(got).toBeInstanceOf(Float32Array);
      expect(got.byteOffset % 4).toBe(0);
      expect(Buffer.from(bits(got).buffer, bits(got).byteOffset, got.byteLength).equals(Buffer.from(data.buffer))).toBe(true);
    }
  });

  it('reads tensors in place: as views over the received bytes, across fragments, copying only what is misaligned', () => {
    const data = new Float32Array(1000).map((_, i) => Math.cos(i));
    const frame = encode(update(data));
    const same = (got: Float32Array) => Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(data.buffer));
    const read = (f: Uint8Array | Uint8Array[]) => {
      const before = { ...tensorReads };
      const d = decode(trainerToAggregator, f);
      if (!d.ok || d.msg.type !== 'update') throw new Error(d.ok ? d.msg.type : d.error);
      return { got: d.msg.delta[0].data, views: tensorReads.views - before.views, copies: tensorReads.copies - before.copies };
    };
    // At a 4-aligned place in a larger buffer (how ws hands over a pooled Buffer): a view, no copy.
    const pool = new Uint8Array(frame.byteLength + 8);
    pool.set(frame, 4);
    const aligned = read(pool.subarray(4, 4 + frame.byteLength));
    expect(aligned).toMatchObject({ views: 1, copies: 0 });
    expect(aligned.got.buffer).toBe(pool.buffer);
    expect(same(aligned.got)).toBe(true);
    // At an odd offset: one copy, aligned and bit-exact.
    for (const offset of [1, 2, 3]) {
      const odd = new Uint8Array(frame.byteLength + 4);
      odd.set(frame, offset);
      const r = read(odd.subarray(offset, offset + frame.byteLength));
      expect(r).toMatchObject({ views: 0, copies: 1 });
      expect(r.got.byteOffset % 4).toBe(0);
      expect(same(r.got)).toBe(true);
    }
    // The pieces a sender writes as fragments: the tensor is a view over the sender's own array.
    const parts = encodeParts(update(data));
    expect(parts).toHaveLength(2);
    const inPlace = read(parts);
    expect(inPlace).toMatchObject({ views: 1, copies: 0 });
    expect(inPlace.got.buffer).toBe(data.buffer);
    // Cut at arbitrary places: still bit-exact.
    const pieces = Array.from({ length: Math.ceil(frame.byteLength / 7) }, (_, i) => frame.slice(i * 7, i * 7 + 7));
    expect(same(read([new Uint8Array(0), ...pieces]).got)).toBe(true);
  });

  it('over a real socket: a trainer sends an update unmasked, as fragments; the aggregator reads it in place, bit-exactly', async () => {
    const data = new Float32Array(1_000_000).map((_, i) => Math.sin(i));
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    const got = new Promise<{ parts: number; msg: MessageOf<'update'> | string; views: number }>((resolve) =>
      wss.once('connection', (conn) => {
        receiveFragments(conn);
        conn.once('message', (raw) => {
          const before = tensorReads.views;
          const parts = frameBytes(raw);
          const d = decode(trainerToAggregator, parts);
          resolve({ parts: parts.length, msg: !d.ok ? d.error : d.msg.type === 'update' ? d.msg : d.msg.type, views: tensorReads.views - before });
        });
      }),
    );
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, unmaskedFrames);
    await new Promise((r) => client.once('open', r));
    sendToAggregator(client, update(data));
    const r = await got;
    client.close();
    wss.close();
    expect(r.parts).toBe(2);
    expect(r.views).toBe(1);
    if (typeof r.msg === 'string') throw new Error(r.msg);
    const { delta, ...rest } = r.msg;
    const { delta: sent, ...restSent } = update(data);
    expect(rest).toEqual(restSent);
    expect(delta.map((t) => [t.name, t.shape])).toEqual(sent.map((t) => [t.name, t.shape]));
    expect(Buffer.from(delta[0].data.buffer, delta[0].data.byteOffset, delta[0].data.byteLength).equals(Buffer.from(data.buffer))).toBe(true);
  });

  it('refuses a frame whose layout does not add up, in one line', () => {
    const frame = encode(update(new Float32Array([1, 2, 3, 4])));
    const headerLength = new DataView(frame.buffer).getUint32(0, true);
    const withHeaderLength = (n: number) => {
      const f = frame.slice();
      new DataView(f.buffer).setUint32(0, n, true);
      return f;
    };
    const cases: [Uint8Array, RegExp][] = [
      [frame.subarray(0, 3), /^frame of 3 bytes is shorter than its 4-byte header length$/],
      [frame.subarray(0, frame.byteLength - 4), /^truncated frame: its header announces at least \d+ bytes, the frame has \d+$/],
      [new Uint8Array([...frame, 0, 0, 0, 0]), /^frame has 4 bytes after its tensors \(its header announces 16 tensor bytes\)$/],
      [withHeaderLength(1 << 30), /^truncated frame: a 1073741824-byte header announced, \d+ bytes follow$/],
      [withHeaderLength(headerLength - 2), /^not a msgpack frame \(/],
      [encodeUnchecked({ ...update(new Float32Array(1)), delta: [{ name: 'a', shape: [1], data: { '\0f32': -1 } }] }), /^a tensor marker holds -1, not a count of floats$/],
    ];
    for (const [f, re] of cases) expect(decode(trainerToAggregator, f)).toEqual({ ok: false, code: 'FEDSLICE_ERR_FRAME', error: expect.stringMatching(re) });
  });

  it('a frame is the raw float bytes plus a small envelope (no per-float encoding)', () => {
    const data = new Float32Array(100_000);
    expect(encode(update(data)).byteLength).toBeLessThan(data.byteLength + 512);
  });

  it('round-trips every message type on the direction that carries it', () => {
    for (const [name, direction] of directions) {
      for (const type of carries[name]) {
        expect(decode(direction, encode(samples[type]))).toEqual({ ok: true, msg: samples[type] });
        expect(decode(direction, encodeParts(samples[type]))).toEqual({ ok: true, msg: samples[type] });
      }
    }
  });

  it('refuses a message on a direction that does not carry it', () => {
    for (const [name, direction] of directions) {
      for (const [type, msg] of Object.entries(samples)) {
        if (carries[name].includes(type as MessageType)) continue;
        const d = decode(direction, encode(msg));
        expect(d).toMatchObject({ ok: false, code: 'FEDSLICE_ERR_MESSAGE', error: expect.stringMatching(new RegExp(`^a ${type} message does not travel from`)) });
      }
    }
    expect(refusal(trainerToAggregator, samples.task).error).toMatch(/task message does not travel from a trainer to its aggregator \(that carries join, ready, update, steps\)/);
  });

  it('never throws on garbage, and says what is wrong', () => {
    for (const junk of [new Uint8Array([0xc1]), new Uint8Array(0), Buffer.from('hello world'), new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])]) {
      for (const [, direction] of directions) expect(decode(direction, junk).ok).toBe(false);
    }
    const notMsg = decode(trainerToAggregator, encodeUnchecked({ type: 'launch-missiles' }));
    expect(notMsg).toMatchObject({ ok: false, code: 'FEDSLICE_ERR_MESSAGE', error: expect.stringMatching(/unknown message type/) });
    for (const v of [null, 7, 'update', [1, 2], new Float32Array(2), { round: 1 }]) {
      expect(refusal(trainerToAggregator, v)).toMatchObject({ code: 'FEDSLICE_ERR_MESSAGE', error: expect.stringMatching(/unknown message type/) });
    }
  });

  it('checks every field: wrong types, negative rounds, shapes that do not match the data', () => {
    const base = update(new Float32Array(4));
    const cases: [Direction, object, RegExp][] = [
      [trainerToAggregator, { ...base, round: -1 }, /^update\.round must be a non-negative integer$/],
      [trainerToAggregator, { ...base, job: 7 }, /^update\.job must be a non-empty string$/],
      [trainerToAggregator, { ...base, metrics: { trainLoss: 'x' } }, /^update\.metrics\.trainLoss must be a finite number$/],
      [trainerToAggregator, { ...base, delta: [{ name: 'a', shape: [5], data: new Float32Array(4) }] }, /^update\.delta\[0\] is tensor a with 4 values, but shape \[5\] needs 5$/],
      [trainerToAggregator, { ...base, delta: [{ name: 'a', shape: [4], data: [1, 2, 3, 4] }] }, /^update\.delta\[0\]\.data must be a Float32Array$/],
      [trainerToAggregator, { ...base, numSamples: undefined }, /^update\.numSamples must be a non-negative integer$/],
      [trainerToAggregator, { ...base, seq: 1.5 }, /^update\.seq must be a non-negative integer$/],
      [trainerToAggregator, { ...samples.steps, point: { ...samples.steps.point, loss: Number.NaN } }, /^steps\.point\.loss must be a finite number$/],
      [trainerToAggregator, { ...samples.steps, point: { ...samples.steps.point, step: 0 } }, /^steps\.point\.step must be at least 1$/],
      [trainerToAggregator, { ...samples.steps, globalStep: 'many' }, /^steps\.globalStep must be a non-negative integer$/],
      [trainerToAggregator, { ...base, metrics: { ...base.metrics, stats: { ...samples.update.metrics.stats, dataLoadShare: 2 } } }, /^update\.metrics\.stats\.dataLoadShare must be at most 1$/],
      [toMetaserver, { type: 'hello', job: 'j', role: 'king', id: 'x' }, /^hello\.role must be one of aggregator, trainer, observer$/],
      [toMetaserver, { type: 'hello', job: 'j', role: 'trainer' }, /^hello\.id must be a non-empty string$/],
      [aggregatorToTrainer, { ...samples.task, hyper: { ...hyper, learningRate: undefined } }, /^task\.hyper\.learningRate is missing$/],
      [aggregatorToTrainer, { ...samples.task, hyper: { ...hyper, batchSize: 0 } }, /^task\.hyper\.batchSize must be greater than 0$/],
      [aggregatorToTrainer, { ...samples.task, hyper: { ...hyper, optimizer: 'sgd' } }, /^task\.hyper\.optimizer must be one of adam$/],
      [aggregatorToTrainer, { ...samples.task, hyper: { ...hyper, augment: 1 } }, /^task\.hyper\.augment must be true or false$/],
      [aggregatorToTrainer, { ...samples.task, hyper: { ...hyper, seed: -3 } }, /^task\.hyper\.seed must be a non-negative integer$/],
      [aggregatorToTrainer, { type: 'error', code: 'OOPS', message: 'x' }, /^error\.code must be a known FEDSLICE_ERR_ code$/],
      [fromMetaserver, { type: 'peer-left', job: 'j', peer: { id: 'x', role: 'trainer' }, reason: 'bored' }, /^peer-left\.reason must be one of closed, timeout$/],
      [fromMetaserver, { type: 'welcome', job: 'j', peers: [{ id: '', role: 'trainer' }] }, /^welcome\.peers\[0\]\.id must be a non-empty string$/],
    ];
    for (const [direction, msg, re] of cases) {
      expect(refusal(direction, msg)).toMatchObject({ code: 'FEDSLICE_ERR_MESSAGE', error: expect.stringMatching(re) });
    }
  });

  it('limits counts: tensors, tensor rank, peers', () => {
    const t = { name: 'a', shape: [1], data: new Float32Array(1) };
    const many = Array.from({ length: MAX_TENSORS + 1 }, () => t);
    expect(refusal(trainerToAggregator, { ...update(t.data), delta: many }).error).toMatch(`update.delta must have at most ${MAX_TENSORS} entries`);
    const deep = { name: 'a', shape: Array.from({ length: MAX_RANK + 1 }, () => 1), data: t.data };
    expect(refusal(trainerToAggregator, { ...update(t.data), delta: [deep] }).error).toMatch(`update.delta[0].shape must have at most ${MAX_RANK} entries`);
    const crowd = Array.from({ length: MAX_PEERS + 1 }, (_, i) => ({ id: `p${i}`, role: 'trainer' }));
    expect(refusal(fromMetaserver, { type: 'welcome', job: 'j', peers: crowd }).error).toMatch(`welcome.peers must have at most ${MAX_PEERS} entries`);
  });

  it('carries async versions, sequence numbers and straggler slowdowns, and checks them', () => {
    const d = decode(aggregatorToTrainer, encode(samples.task));
    expect(d.ok && d.msg).toMatchObject({ type: 'task', version: 17, seq: 2, mode: 'async', hyper: { slowdown: 2.5 } });
    const u = decode(trainerToAggregator, encode({ ...update(new Float32Array(2)), version: 4, seq: 0 }));
    expect(u.ok && u.msg).toMatchObject({ type: 'update', version: 4, seq: 0 });
    for (const [msg, re] of [
      [{ ...samples.task, version: -1 }, /version must be a non-negative integer/],
      [{ ...samples.task, seq: -1 }, /seq must be a non-negative integer/],
      [{ ...samples.task, hyper: { ...hyper, slowdown: 0.5 } }, /slowdown is 0.5; it must be at least 1/],
      [{ ...samples.task, mode: 'gossip' }, /mode must be one of/],
    ] as [object, RegExp][]) {
      expect(refusal(aggregatorToTrainer, msg).error).toMatch(re);
    }
  });

  it('refuses a NaN or infinite delta, naming the tensor', () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      const data = new Float32Array(8);
      data[5] = v;
      const d = decode(trainerToAggregator, encode(update(data)));
      expect(d).toMatchObject({ ok: false, code: 'FEDSLICE_ERR_NONFINITE', error: expect.stringMatching(/conv1.weight .* at index 5/) });
    }
  });

  it('refuses a non-finite value anywhere in a large tensor, read in place or copied from misaligned fragments', () => {
    const n = 100_003;
    for (const [at, v] of [[0, NaN], [16_383, Infinity], [16_384, -Infinity], [65_537, NaN], [n - 1, Infinity]] as const) {
      const data = new Float32Array(n).map((_, i) => Math.sin(i));
      data[at] = v;
      const frame = encode(update(data));
      // whole (a view), then cut into odd pieces (the tensor copied out of them first)
      const pieces = [frame.subarray(0, 13), frame.subarray(13, 40_001), frame.subarray(40_001)];
      for (const f of [frame, pieces]) {
        const d = decode(trainerToAggregator, f);
        expect(d).toEqual({ ok: false, code: 'FEDSLICE_ERR_NONFINITE', error: `update.delta[0] is tensor conv1.weight with a non-finite value (${v}) at index ${at}` });
      }
    }
    const finite = new Float32Array(n).map((_, i) => (i % 2 ? -3.4028234663852886e38 : 1e-45));
    expect(decode(trainerToAggregator, encode(update(finite))).ok).toBe(true);
  });

  it('matches tensor lists against the names and shapes expected', () => {
    const got = [{ name: 'a', shape: [2, 3], data: new Float32Array(6) }];
    expect(checkTensorsMatch([{ name: 'a', shape: [2, 3] }], got)).toBeNull();
    expect(checkTensorsMatch([{ name: 'a', shape: [3, 2] }], got)).toMatch(/shape \[2,3\], expected \[3,2\]/);
    expect(checkTensorsMatch([{ name: 'b', shape: [2, 3] }], got)).toMatch(/is a, expected b/);
    expect(checkTensorsMatch([], got)).toMatch(/expected 0 tensors, got 1/);
  });

  it('derives the frame limit from the model size', () => {
    expect(maxFrameBytes(220e6)).toBeGreaterThan(220e6);
    expect(maxFrameBytes(220e6)).toBeLessThan(240e6);
  });

  it("a task's hyper-parameters are the config's train section, its seed and the slot's slowdown", () => {
    const c = parseExperiment({ seed: 9, train: { learningRate: 0.01, maxStepsPerEpoch: 2 }, federation: { worldSize: 2, stragglers: [{ slot: 1, slowdown: 3 }] } });
    expect(taskHyperOf(c, 0)).toEqual({ ...c.train, seed: 9 });
    expect(taskHyperOf(c, 1)).toEqual({ ...c.train, seed: 9, slowdown: 3 });
    const task = { ...samples.task, hyper: taskHyperOf(c, 1) };
    expect(decode(aggregatorToTrainer, encode(task))).toEqual({ ok: true, msg: task });
  });
});

describe('wire types (checked by tsc)', () => {
  it('each direction carries exactly its messages, and each typed send takes only those', () => {
    expectTypeOf<ToMetaserver['type']>().toEqualTypeOf<'hello' | 'status'>();
    expectTypeOf<FromMetaserver['type']>().toEqualTypeOf<'welcome' | 'peer-joined' | 'peer-left' | 'status' | 'error'>();
    expectTypeOf<TrainerToAggregator['type']>().toEqualTypeOf<'join' | 'ready' | 'update' | 'steps'>();
    expectTypeOf<AggregatorToTrainer['type']>().toEqualTypeOf<'joined' | 'task' | 'grant' | 'done' | 'error'>();
    expectTypeOf(sendToMetaserver).parameter(1).toEqualTypeOf<ToMetaserver>();
    expectTypeOf(sendFromMetaserver).parameter(1).toEqualTypeOf<FromMetaserver>();
    expectTypeOf(sendToAggregator).parameter(1).toEqualTypeOf<TrainerToAggregator>();
    expectTypeOf(sendToTrainer).parameter(1).toEqualTypeOf<AggregatorToTrainer>();
    expectTypeOf(decode(trainerToAggregator, new Uint8Array())).toEqualTypeOf<{ ok: true; msg: TrainerToAggregator } | { ok: false; code: ErrorCode; error: string }>();
    const never = (conn: WebSocket) => {
      // @ts-expect-error a trainer cannot send a task
      sendToAggregator(conn, samples.task);
      // @ts-expect-error the aggregator cannot send an update
      sendToTrainer(conn, samples.update);
      // @ts-expect-error the metaserver does not send hello
      sendFromMetaserver(conn, samples.hello);
      // @ts-expect-error a role does not send welcome to the metaserver
      sendToMetaserver(conn, samples.welcome);
    };
    expect(typeof never).toBe('function');
  });

  it('the inferred types are what the senders build', () => {
    expectTypeOf<MessageOf<'task'>['hyper']>().toEqualTypeOf<TaskHyper>();
    expectTypeOf(taskHyperOf).returns.toExtend<TaskHyper>();
    expectTypeOf<TaskHyper>().toExtend<TrainHyper>();
    expectTypeOf<TrainHyper>().toEqualTypeOf<Omit<TrainConfig, 'optimizer'>>();
    expectTypeOf<MessageOf<'update'>['delta'][number]>().toEqualTypeOf<{ name: string; shape: number[]; data: Float32Array }>();
    expectTypeOf<MessageOf<'update'>['seq']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<MessageOf<'error'>['code']>().toEqualTypeOf<ErrorCode>();
    expectTypeOf<Message>().toEqualTypeOf<ToMetaserver | FromMetaserver | TrainerToAggregator | AggregatorToTrainer>();
    // @ts-expect-error a task without its seed does not compile
    const noSeed: MessageOf<'task'> = { ...samples.task, hyper: { optimizer: 'adam', learningRate: 1, weightDecay: 0, batchSize: 1, epochs: 1, augment: false } };
    // @ts-expect-error an error code must be one of ERROR_CODES
    const badCode: MessageOf<'error'> = { type: 'error', code: 'FEDSLICE_ERR_NOPE', message: 'x' };
    expect([noSeed, badCode]).toHaveLength(2);
  });
});

describe('error codes', () => {
  const root = join(import.meta.dirname, '..');
  const skip = new Set(['node_modules', 'test', 'results', 'data', '.git'].map((d) => join(root, d)));
  function sources(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      if (skip.has(join(dir, e.name))) return [];
      const path = join(dir, e.name);
      if (e.isDirectory()) return sources(path);
      return /\.(ts|js|cjs|mjs)$/.test(e.name) ? [path] : [];
    });
  }
  const used = new Map<string, string>(); // code -> first file using it
  for (const file of sources(root)) {
    if (relative(root, file) === join('core', 'errors.ts')) continue;
    for (const [code] of readFileSync(file, 'utf8').matchAll(/FEDSLICE_ERR_[A-Z0-9_]+/g)) if (!used.has(code)) used.set(code, relative(root, file));
  }

  it('every FEDSLICE_ERR_ code in the production sources is declared in ERROR_CODES', () => {
    expect(used.size).toBeGreaterThan(40);
    const undeclared = [...used].filter(([code]) => !Object.hasOwn(ERROR_CODES, code)).map(([code, file]) => `${code} (${file})`);
    expect(undeclared).toEqual([]);
  });

  it('every declared code is used somewhere', () => {
    expect(Object.keys(ERROR_CODES).filter((code) => !used.has(code))).toEqual([]);
  });

  it('a trainer gives up only on refusals that rejoining cannot change', () => {
    const fatal = Object.keys(ERROR_CODES).filter((c) => isFatalForTrainer(c as ErrorCode));
    expect(fatal.sort()).toEqual(['FEDSLICE_ERR_FULL', 'FEDSLICE_ERR_JOB', 'FEDSLICE_ERR_SHARD', 'FEDSLICE_ERR_TOKEN']);
  });
});
