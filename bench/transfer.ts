/**
 * Moving a full-width model (55.1 M float32 parameters, 220 MB) aggregator -> trainer -> aggregator
 * over a loopback WebSocket with the fedslice codec, against a plain Buffer copy of the same bytes
 * measured in the same run; and the merge of W = 8 slices at full width.
 *
 *   node --import tsx bench/transfer.ts [--repeats 3]
 */
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { alexnetLayers, parameterSpecs } from '../core/model/spec.ts';
import { decode, encode, maxFrameBytes } from '../core/wire/codec.ts';
import { aggregatorToTrainer, trainerToAggregator, type MessageOf } from '../core/wire/schema.ts';
import { frameBytes, sendToAggregator, sendToTrainer } from '../core/wire/socket.ts';
import { sizeOf, totalBytes, type Weights } from '../core/model/tensor.ts';
import { slicePlan } from '../core/model/slice-plan.ts';
import { cutWeights, mergeInto } from '../core/aggregation/cut-merge.ts';

const { values } = parseArgs({ options: { repeats: { type: 'string', default: '3' } } });
const repeats = Number(values.repeats);
const layers = alexnetLayers({ width: 1, numClasses: 100 });
const weights: Weights = parameterSpecs(layers).map((p) => {
  const data = new Float32Array(sizeOf(p.shape));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i);
  return { name: p.name, shape: p.shape, data };
});
const bytes = totalBytes(weights);
const mb = bytes / 1e6;
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const best = (xs: number[]) => Math.min(...xs);

// Baseline: one copy of the same bytes in memory.
const copies: number[] = [];
for (let r = 0; r < repeats; r++) {
  const t0 = performance.now();
  const out = Buffer.allocUnsafe(bytes);
  let off = 0;
  for (const t of weights) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), off);
    off += t.data.byteLength;
  }
  copies.push(seconds(t0));
}

const task: MessageOf<'task'> = {
  type: 'task', job: 'bench', round: 1, rank: 0, worldSize: 1, mode: 'fedavg', weights,
  hyper: { optimizer: 'adam', learningRate: 1e-4, weightDecay: 1e-4, batchSize: 32, epochs: 1, augment: true, seed: 1 },
};
const encodes: number[] = [];
const decodes: number[] = [];
let frame = encode(task);
for (let r = 0; r < repeats; r++) {
  let t0 = performance.now();
  frame = encode(task);
  encodes.push(seconds(t0));
  t0 = performance.now();
  const d = decode(aggregatorToTrainer, frame);
  decodes.push(seconds(t0));
  if (!d.ok) throw new Error(d.error);
}

// Round trip over a real loopback socket: the "aggregator" sends the task, the "trainer" decodes
// it and answers with an update of the same size, which the aggregator decodes.
const limit = maxFrameBytes(bytes);
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: limit });
await new Promise((r) => wss.once('listening', r));
const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
wss.on('connection', (conn) => {
  conn.on('message', (data) => {
    const d = decode(aggregatorToTrainer, frameBytes(data));
    if (!d.ok || d.msg.type !== 'task') throw new Error('bad task');
    sendToAggregator(conn, { type: 'update', job: 'bench', round: 1, rank: 0, delta: d.msg.weights, numSamples: 1, metrics: { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 1, steps: 1 } });
  });
});
const client = new WebSocket(url, { maxPayload: limit });
await new Promise((r) => client.once('open', r));
const trips: number[] = [];
for (let r = 0; r < repeats; r++) {
  const t0 = performance.now();
  const back = new Promise<void>((resolve) =>
    client.once('message', (data) => {
      const d = decode(trainerToAggregator, frameBytes(data));
      if (!d.ok) throw new Error(d.error);
      resolve();
    }),
  );
  sendToTrainer(client, task);
  await back;
  trips.push(seconds(t0));
}
client.close();
wss.close();

// Merge of W = 8 slice deltas at full width.
const W = 8;
const contributions = Array.from({ length: W }, (_, r) => {
  const plan = slicePlan(layers, { rank: r, worldSize: W });
  return { plan, tensors: cutWeights(weights, plan), weight: 6250 };
});
const merges: number[] = [];
for (let r = 0; r < repeats; r++) {
  const t0 = performance.now();
  mergeInto(weights, contributions, true);
  merges.push(seconds(t0));
}

const copy = best(copies);
const rows: [string, number, number][] = [
  ['Buffer copy (baseline)', copy, mb / copy],
  ['encode (msgpackr, moreTypes)', best(encodes), mb / best(encodes)],
  ['decode + validate', best(decodes), mb / best(decodes)],
  ['loopback task + update round trip', best(trips), (2 * mb) / best(trips)],
  [`merge W=${W} slices, full width`, best(merges), mb / best(merges)],
];
console.log(`model: ${(weights.reduce((n, t) => n + t.data.length, 0) / 1e6).toFixed(1)} M parameters, ${mb.toFixed(0)} MB; best of ${repeats}`);
console.log(`${'step'.padEnd(36)}  ${'seconds'.padStart(8)}  ${'MB/s'.padStart(8)}  ${'vs copy'.padStart(8)}`);
for (const [name, s, rate] of rows) {
  console.log(`${name.padEnd(36)}  ${s.toFixed(3).padStart(8)}  ${rate.toFixed(0).padStart(8)}  ${(rate / (mb / copy)).toFixed(3).padStart(8)}`);
}
