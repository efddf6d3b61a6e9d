import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '../core/compute/tf.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint, torchParts, writeCheckpoint } from '../core/results/checkpoint.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { initialWeights } from '../core/model/init.ts';
import { initBackend } from '../core/compute/backend.ts';
import { forward, paramTensors } from '../core/model/network.ts';
import { Rng } from '../core/rng.ts';
import { REPO, tempDir } from './helpers/roles.ts';

const layers = alexnetLayers({ width: 0.125, numClasses: 10 });
const weights = initialWeights(layers, 5);
const dir = tempDir('fedslice-ckpt-');
const path = join(dir, 'model.safetensors');

function readHeader(file: string) {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { buf, n, header: JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, { shape: number[]; data_offsets: [number, number] }> };
}

/** The element at PyTorch index `idx` of tensor `name`, read straight from the file bytes. */
function torchElement(file: string, name: string, idx: number[]): number {
  const { buf, n, header } = readHeader(file);
  const e = header[name];
  let flat = 0;
  for (let k = 0; k < idx.length; k++) flat = flat * e.shape[k] + idx[k];
  return buf.readFloatLE(8 + n + e.data_offsets[0] + flat * 4);
}

describe('checkpoints (safetensors, PyTorch layout)', () => {
  beforeAll(async () => {
    await writeCheckpoint(path, layers, weights, { round: '3', runId: 'r1' });
  });

  it('round-trips bit-exactly with its metadata', async () => {
    const back = await readCheckpoint(path, layers);
    expect(back.metadata).toMatchObject({ round: '3', runId: 'r1' });
    back.weights.forEach((t, i) => {
      expect(t.name).toBe(weights[i].name);
      expect(t.shape).toEqual(weights[i].shape);
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(weights[i].data.buffer))).toBe(true);
    });
  });

  it('stores PyTorch names, shapes and element order, with an 8-byte aligned header', () => {
    const { n, header } = readHeader(path);
    expect(n % 8).toBe(0);
    expect(header['conv1.weight'].shape).toEqual([12, 3, 5, 5]);
    expect(header['fc1.weight'].shape).toEqual([512, 512]);
    expect(header['fc4.weight'].shape).toEqual([10, 512]);
    const conv2 = weights.find((t) => t.name === 'conv2.weight')!; // ours [kh, kw, in, out] = [5, 5, 12, 32]
    const [, kw, ci, co] = conv2.shape;
    for (const [y, x, i, o] of [[0, 0, 0, 0], [4, 3, 11, 31], [2, 1, 5, 7]]) {
      expect(torchElement(path, 'conv2.weight', [o, i, y, x])).toBe(conv2.data[((y * kw + x) * ci + i) * co + o]);
    }
    const fc2 = weights.find((t) => t.name === 'fc2.weight')!; // ours [in, out]
    for (const [i, o] of [[0, 0], [511, 3], [17, 400]]) {
      expect(torchElement(path, 'fc2.weight', [o, i])).toBe(fc2.data[i * fc2.shape[1] + o]);
    }
  });

  it('a tensor made in parts of a few torch rows gives the bytes the file holds, for rows that do not divide the parts evenly', () => {
    const { buf, n, header } = readHeader(path);
    const layerOf = new Map(layers.map((l) => [l.name, l]));
    for (const t of weights) {
      const [layer, role] = t.name.split('.');
      const e = header[t.name];
      const inFile = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
      // 1000 floats: 3 rows of conv2's 300, 1 row of fc1's 512 (and any tensor smaller than a part)
      const parts: Buffer[] = [];
      // each part is copied as it comes: the next one refills the same storage
      for (const p of torchParts(layerOf.get(layer)!, role === 'bias' ? 'bias' : 'weight', t, 1000)) parts.push(Buffer.from(new Uint8Array(p.buffer, p.byteOffset, p.byteLength)));
      if (role === 'weight' && t.data.length > 1000) expect(parts.length, t.name).toBeGreaterThan(1);
      expect(Buffer.concat(parts).equals(inFile), t.name).toBe(true);
    }
  });

  it('refuses a truncated file and a model of another shape, naming the problem', async () => {
    const cut = join(dir, 'cut.safetensors');
    writeFileSync(cut, readFileSync(path));
    truncateSync(cut, 5000);
    await expect(readCheckpoint(cut, layers)).rejects.toThrow(/cut short \(truncated\?\)/);
    const other = alexnetLayers({ width: 0.25, numClasses: 10 });
    await expect(readCheckpoint(path, other)).rejects.toThrow(/conv1.weight has shape \[12,3,5,5\], expected \[24,3,5,5\]/);
    await expect(readCheckpoint(join(dir, 'missing.safetensors'), layers)).rejects.toThrow(/cannot read checkpoint/);
  });

  const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!torch)('loads into a PyTorch AlexNet that computes the same log-probabilities (needs Debian python3-torch)', async () => {
    await initBackend('auto');
    const n = 3;
    const rng = new Rng(11);
    const nchw = new Float32Array(n * 3 * 32 * 32).map(() => rng.normal());
    const raw = join(dir, 'images.raw');
    writeFileSync(raw, Buffer.from(nchw.buffer));
    const ours = tf.tidy(() => {
      const x = tf.transpose(tf.tensor4d(nchw, [n, 3, 32, 32]), [0, 2, 3, 1]) as tf.Tensor4D;
      const params = paramTensors(weights);
      const out = forward(layers, params, x, { dropout: null }).dataSync();
      tf.dispose([...params.values()]);
      return Array.from(out);
    });
    const script = join(REPO, 'test', 'fixtures', 'torch_forward.py');
    const theirs = JSON.parse(execFileSync('/usr/bin/python3', [script, path, raw, String(n), '0.125', '10'], { encoding: 'utf8' })) as number[];
    expect(theirs).toHaveLength(ours.length);
    theirs.forEach((v, i) => expect(v).toBeCloseTo(ours[i], 4));
  });
});
