/**
 * A trainer's memory is flat over rounds: with one LocalModel kept across tasks (as the trainer
 * keeps it), ten rounds of load, train, delta in place and evaluate leave tfjs's tensor count and
 * bytes and the wasm heap exactly where round 2 left them. A tensor not disposed, or a buffer
 * allocated afresh each round that the heap cannot reuse, makes them grow. The same for the
 * aggregator's evaluations, which make each layer's parameter tensors as the layer runs: they must
 * give the figures of a forward pass over the whole model's tensors, and keep no tensor.
 */
import * as tf from '../core/compute/tf.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../core/compute/backend.ts';
import { wasmHeapBytes } from '../core/compute/tensor-views.ts';
import { generateSynthetic } from '../core/data/synthetic.ts';
import type { TrainTestSets } from '../core/data/types.ts';
import { initialWeights } from '../core/model/init.ts';
import { alexnetLayers, type LayerSpec } from '../core/model/spec.ts';
import { forward, paramTensors } from '../core/model/network.ts';
import { allocBatch, fillBatch } from '../core/data/batches.ts';
import { IMAGE_CHANNELS, IMAGE_SIDE, type ImageSet } from '../core/data/types.ts';
import { cloneWeights, type Weights } from '../core/model/tensor.ts';
import { range } from '../core/rng.ts';
import { evaluate } from '../core/training/evaluate.ts';
import { LocalModel } from '../core/training/local-model.ts';
import { trainLocal, trainModel, type TrainHyper } from '../core/training/train.ts';

const NUM_CLASSES = 10;
const hyper: TrainHyper = { learningRate: 1e-3, weightDecay: 1e-4, batchSize: 16, epochs: 1, augment: true, maxStepsPerEpoch: 2 };

interface AfterRound {
  tensors: number;
  bytes: number;
  heap: number | null;
}

describe('memory over rounds', () => {
  let sets: TrainTestSets;
  beforeAll(async () => {
    await initBackend('wasm');
    sets = generateSynthetic({ numClasses: NUM_CLASSES, trainCount: 200, testCount: 100, seed: 3 });
  });

  it('ten rounds of a trainer leave tensors, tensor bytes and the wasm heap as round 2 left them', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    let global = initialWeights(layers, 5);
    const model = new LocalModel();
    const after: AfterRound[] = [];
    for (let round = 1; round <= 10; round++) {
      // the task's weights, as a trainer receives them: its own arrays, overwritten by the delta
      const task = cloneWeights(global);
      await trainModel(model, { layers, weights: task, data: sets.train, indices: range(64), hyper, seed: 5, round });
      const delta = model.deltaInPlace(task);
      global = global.map((t, i) => ({ ...t, data: t.data.map((x, k) => x + delta[i].data[k]) }));
      await evaluate({ layers, weights: global, data: sets.test, batchSize: 50 });
      const m = tf.memory();
      after.push({ tensors: m.numTensors, bytes: m.numBytes, heap: wasmHeapBytes() });
    }
    model.dispose();
    expect(after[1].heap).not.toBeNull();
    for (let r = 2; r < after.length; r++) expect(after[r], `after round ${r + 1}`).toEqual(after[1]);
  }, 300_000);

  it('a trainer\'s rounds repeat their allocations: from round 2 on every tensor of 4,096 elements or more lands where round 2 put it', async () => {
    // The emscripten allocator places a block by the free blocks it finds, so a round whose tensors
    // land elsewhere than the last round's leaves the free space cut differently, and over enough
    // rounds a large block finds no hole: the heap grows for good (a full-width trainer's did,
    // 1.22 -> 1.34 GB over 10 rounds, while its weights took a new block at every Adam step). With
    // the weights written in place, each round makes the same blocks in the same order at the same
    // offsets, so the heap's layout, and its size, are a fixed point. (Small blocks, biases and the
    // backend's own bookkeeping, still shift by a few bytes; they cannot cut a large hole.)
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    const start = initialWeights(layers, 8);
    const model = new LocalModel();
    const rounds: string[][] = [];
    const stop = traceAllocations(4096, (at) => rounds[rounds.length - 1].push(at));
    try {
      for (let round = 1; round <= 8; round++) {
        rounds.push([]);
        const task = cloneWeights(start);
        await trainModel(model, { layers, weights: task, data: sets.train, indices: range(64), hyper, seed: 8, round });
        model.deltaInPlace(task);
      }
    } finally {
      stop();
      model.dispose();
    }
    expect(rounds[1].length).toBeGreaterThan(100);
    for (let r = 2; r < rounds.length; r++) expect(rounds[r], `round ${r + 1}'s allocations`).toEqual(rounds[1]);
  }, 300_000);

  it('ten evaluations layer by layer give the figures of the whole model\'s tensors, keep no tensor and leave the wasm heap as the second left it', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    const before = tf.memory().numTensors;
    const after: AfterRound[] = [];
    for (let round = 1; round <= 10; round++) {
      // a new model each round, as the aggregator's merge gives
      const weights = initialWeights(layers, 20 + round);
      const whole = wholeModelEvaluation(layers, weights, sets.test, 30);
      const ev = await evaluate({ layers, weights, data: sets.test, batchSize: 30 });
      expect({ loss: ev.loss, accuracy: ev.accuracy }, `round ${round}`).toEqual(whole);
      const m = tf.memory();
      after.push({ tensors: m.numTensors, bytes: m.numBytes, heap: wasmHeapBytes() });
    }
    expect(after[1].heap).not.toBeNull();
    for (let r = 2; r < after.length; r++) expect(after[r], `after round ${r + 1}`).toEqual(after[1]);
    expect(tf.memory().numTensors).toBe(before);
  }, 300_000);

  it('the delta computed in place equals trained minus starting weights, and matches trainLocal', async () => {
    const layers = alexnetLayers({ width: 1 / 16, numClasses: NUM_CLASSES });
    const start = initialWeights(layers, 6);
    const args = { layers, data: sets.train, indices: range(48), hyper, seed: 6, round: 2 };
    const plain = await trainLocal({ ...args, weights: start });
    const model = new LocalModel();
    const task: Weights = cloneWeights(start);
    await trainModel(model, { ...args, weights: task });
    const trained = model.weights();
    const delta = model.deltaInPlace(task);
    model.dispose();
    expect(delta).toBe(task);
    trained.forEach((t, i) => {
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(plain.weights[i].data.buffer)), t.name).toBe(true);
      const expected = t.data.map((x, k) => x - start[i].data[k]);
      expect(Buffer.from(delta[i].data.buffer).equals(Buffer.from(expected.buffer)), `${t.name} delta`).toBe(true);
    });
  }, 300_000);
});

/** evaluate()'s figures computed over every parameter tensor made at once, as before it went layer by layer. */
function wholeModelEvaluation(layers: LayerSpec[], weights: Weights, set: ImageSet, batchSize: number): { loss: number; accuracy: number } {
  const params = paramTensors(weights);
  const order = range(set.count);
  const batch = allocBatch(batchSize);
  let nllSum = 0;
  let correct = 0;
  for (let start = 0; start < set.count; start += batchSize) {
    const size = Math.min(batchSize, set.count - start);
    fillBatch(set, order, start, size, null, batch);
    const [p, r] = tf.tidy(() => {
      const x = tf.tensor4d(batch.x.subarray(0, size * IMAGE_SIDE * IMAGE_SIDE * IMAGE_CHANNELS), [size, IMAGE_SIDE, IMAGE_SIDE, IMAGE_CHANNELS]);
      const y = tf.tensor1d(batch.y.subarray(0, size), 'int32');
      const logp = forward(layers, params, x, { dropout: null });
      const picked = tf.sum(tf.mul(logp, tf.oneHot(y, logp.shape[1])));
      const right = tf.sum(tf.cast(tf.equal(tf.argMax(logp, 1), y), 'float32'));
      return [picked.dataSync()[0], right.dataSync()[0]];
    });
    nllSum -= p;
    correct += r;
  }
  tf.dispose([...params.values()]);
  return { loss: nllSum / set.count, accuracy: correct / set.count };
}

/** What of the wasm backend the allocation trace uses: where a tensor's bytes are written, and at what offset. */
interface AllocatingBackend {
  move(dataId: object, values: unknown, shape: number[], dtype: string, refCount: number): void;
  getMemoryOffset(dataId: object): number;
}

function isAllocatingBackend(b: object): b is AllocatingBackend {
  return 'move' in b && typeof b.move === 'function' && 'getMemoryOffset' in b && typeof b.getMemoryOffset === 'function';
}

/** Calls `record` with "elements x dtype @ offset" for every tensor of `minElements` or more the wasm backend allocates, until the returned function is called. */
function traceAllocations(minElements: number, record: (at: string) => void): () => void {
  const backend: object = tf.backend();
  if (!isAllocatingBackend(backend)) throw new Error('the allocation trace needs the wasm backend');
  const move = backend.move;
  backend.move = (dataId, values, shape, dtype, refCount) => {
    move.call(backend, dataId, values, shape, dtype, refCount);
    const elements = shape.reduce((n, d) => n * d, 1);
    if (elements >= minElements) record(`${elements}x${dtype}@${backend.getMemoryOffset(dataId)}`);
  };
  return () => {
    backend.move = move;
  };
}
