import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { checkTensorsMatch, decode, encode, maxFrameBytes, type Message } from '../core/wire/messages.ts';

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function update(data: Float32Array, shape = [data.length]): Message {
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

describe('wire codec', () => {
  it('round-trips tensors bit-exactly: -0, denormals, extremes, and a 10M-element tensor', () => {
    const special = new Float32Array([0, -0, 1.401298464324817e-45, -3.4028234663852886e38, 1 / 3, 1e-38]);
    const big = new Float32Array(10_000_000);
    for (let i = 0; i < big.length; i++) big[i] = Math.sin(i) * 1e3;
    for (const data of [special, big]) {
      const d = decode(encode(update(data)));
      expect(d.ok).toBe(true);
      const got = (d as { ok: true; msg: Extract<Message, { type: 'update' }> }).msg.delta[0].data;
      expect(got).toBeInstanceOf(Float32Array);
      expect(got.byteOffset % 4).toBe(0);
      expect(Buffer.from(bits(got).buffer, bits(got).byteOffset, got.byteLength).equals(Buffer.from(data.buffer))).toBe(true);
    }
  });

  it('a frame is the raw float bytes plus a small envelope (no per-float encoding)', () => {
    const data = new Float32Array(100_000);
    expect(encode(update(data)).byteLength).toBeLessThan(data.byteLength + 512);
  });

  it('never throws on garbage, and says what is wrong', () => {
    for (const junk of [new Uint8Array([0xc1]), new Uint8Array(0), Buffer.from('hello world'), new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])]) {
      const d = decode(junk);
      expect(d.ok).toBe(false);
    }
    const notMsg = decode(new Packr().pack({ type: 'launch-missiles' }));
    expect(notMsg).toMatchObject({ ok: false, code: 'FEDSLICE_ERR_MESSAGE', error: expect.stringMatching(/unknown message type/) });
  });

  it('checks every field: wrong types, negative rounds, shapes that do not match the data', () => {
    const p = new Packr({ moreTypes: true, useRecords: false });
    const base = update(new Float32Array(4)) as unknown as Record<string, unknown>;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, round: -1 }, /round must be a non-negative integer/],
      [{ ...base, job: 7 }, /job must be a non-empty string/],
      [{ ...base, metrics: { trainLoss: 'x' } }, /trainLoss must be a finite number/],
      [{ ...base, delta: [{ name: 'a', shape: [5], data: new Float32Array(4) }] }, /has 4 values but shape \[5\] needs 5/],
      [{ ...base, delta: [{ name: 'a', shape: [4], data: [1, 2, 3, 4] }] }, /must be a Float32Array/],
      [{ type: 'hello', job: 'j', role: 'king', id: 'x', token: 't' }, /role must be one of/],
    ];
    for (const [msg, re] of cases) {
      const d = decode(p.pack(msg));
      expect(d.ok).toBe(false);
      expect((d as { error: string }).error).toMatch(re);
    }
  });

  it('carries async versions and straggler slowdowns, and checks them', () => {
    const task: Message = {
      type: 'task', job: 'j', round: 3, version: 17, rank: 1, worldSize: 2, mode: 'async',
      weights: [{ name: 'fc3.bias', shape: [2], data: new Float32Array([1, 2]) }],
      hyper: { learningRate: 1e-3, weightDecay: 0, batchSize: 32, epochs: 1, augment: false, seed: 5, slowdown: 2.5 },
    };
    const d = decode(encode(task));
    expect(d.ok && d.msg).toMatchObject({ type: 'task', version: 17, mode: 'async', hyper: { slowdown: 2.5 } });
    const u = decode(encode({ ...(update(new Float32Array(2)) as object), version: 4 } as Message));
    expect(u.ok && u.msg).toMatchObject({ type: 'update', version: 4 });
    const p = new Packr({ moreTypes: true, useRecords: false });
    for (const [msg, re] of [
      [{ ...task, version: -1 }, /version must be a non-negative integer/],
      [{ ...task, hyper: { ...(task as { hyper: object }).hyper, slowdown: 0.5 } }, /slowdown is 0.5; it must be at least 1/],
      [{ ...task, mode: 'gossip' }, /mode must be one of/],
    ] as [object, RegExp][]) {
      const r = decode(p.pack(msg));
      expect(r.ok).toBe(false);
      expect((r as { error: string }).error).toMatch(re);
    }
  });

  it('refuses a NaN or infinite delta, naming the tensor', () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      const data = new Float32Array(8);
      data[5] = v;
      const d = decode(encode(update(data)));
      expect(d).toMatchObject({ ok: false, code: 'FEDSLICE_ERR_NONFINITE', error: expect.stringMatching(/conv1.weight .* at index 5/) });
    }
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
});
