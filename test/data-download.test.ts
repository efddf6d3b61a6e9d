import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadCifar, md5OfFile } from '../core/data/download.ts';
import { CIFAR100_LAYOUT, loadCifarDir, type SetLayout } from '../core/data/reader.ts';
import { isFedsliceError } from '../core/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'fedslice-download-'));
const small: SetLayout = { ...CIFAR100_LAYOUT, trainRecords: 4, testRecords: 2 };
let goodArchive = '';
let goodMd5 = '';

function records(n: number, first: number): Buffer {
  const b = Buffer.alloc(n * 3074);
  for (let i = 0; i < n; i++) {
    b[i * 3074] = (first + i) % 20;
    b[i * 3074 + 1] = first + i;
    b.fill(first + i, i * 3074 + 2, (i + 1) * 3074);
  }
  return b;
}

/** A tiny archive in the official layout: cifar-100-binary/{train,test}.bin and the label names. */
function makeArchive(name: string, trainRecords: number): string {
  const src = join(root, `${name}-src`, 'cifar-100-binary');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'train.bin'), records(trainRecords, 0));
  writeFileSync(join(src, 'test.bin'), records(2, 50));
  writeFileSync(join(src, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `f${i}`).join('\n') + '\n');
  writeFileSync(join(src, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `c${i}`).join('\n') + '\n');
  const archive = join(root, `${name}.tar.gz`);
  const r = spawnSync('tar', ['-czf', archive, '-C', join(root, `${name}-src`), 'cifar-100-binary']);
  expect(r.status).toBe(0);
  return archive;
}

async function errorOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isFedsliceError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a FedsliceError');
}

function sink(): PassThrough & { text: () => string } {
  const s = new PassThrough() as PassThrough & { text: () => string };
  const chunks: string[] = [];
  s.on('data', (c) => chunks.push(String(c)));
  s.text = () => chunks.join('');
  return s;
}

let server: Server;
let baseUrl = '';
beforeAll(async () => {
  goodArchive = makeArchive('good', 4);
  goodMd5 = await md5OfFile(goodArchive);
  server = createServer((req, res) => {
    if (req.url === '/cifar-100-binary.tar.gz') {
      const body = readFileSync(goodArchive);
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(root, { recursive: true, force: true });
});

describe('CIFAR-100 download', () => {
  it('an archive with the wrong checksum is one clear error and leaves the folder alone', async () => {
    const dir = join(root, 'wrong-md5');
    const e = await errorOf(downloadCifar({ dir, archive: goodArchive, out: sink() }));
    expect(e.code).toBe('FEDSLICE_ERR_CHECKSUM');
    expect(e.message).toContain(`${goodArchive} has MD5 ${goodMd5} but CIFAR-100 binary has 03b5dce01913d631647c71ecec9e9cb8`);
    expect(e.message).not.toContain('\n');
    expect(existsSync(join(dir, 'train.bin'))).toBe(false);
  });

  it('a good archive is unpacked (contents moved up out of cifar-100-binary/) and validated', async () => {
    const dir = join(root, 'good');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'fedslice-synthetic.json'), '{}'); // a stale synthetic manifest must go
    const out = sink();
    await downloadCifar({ dir, archive: goodArchive, expectedMd5: goodMd5, layout: small, out });
    expect(out.text()).toContain('checksum ok');
    expect(existsSync(join(dir, 'fedslice-synthetic.json'))).toBe(false);
    const sets = loadCifarDir(dir, small);
    expect(Array.from(sets.train.labels)).toEqual([0, 1, 2, 3]);
    expect(Array.from(sets.test.labels)).toEqual([50, 51]);
    expect(sets.test.images[3071]).toBe(50);
    expect(sets.test.images[2 * 3072 - 1]).toBe(51);
    expect(sets.coarseNames).toHaveLength(20);
  });

  it('an archive whose files are not a valid set is refused', async () => {
    const bad = makeArchive('short', 3);
    const e = await errorOf(downloadCifar({ dir: join(root, 'short'), archive: bad, expectedMd5: await md5OfFile(bad), layout: small, out: sink() }));
    expect(e.code).toBe('FEDSLICE_ERR_DATA_SIZE');
    expect(e.message).toMatch(/unpacks to an invalid set: .*train\.bin is 9,222 bytes but must be 12,296/);
    const notTar = join(root, 'not.tar.gz');
    writeFileSync(notTar, 'hello');
    const e2 = await errorOf(downloadCifar({ dir: join(root, 'nt'), archive: notTar, expectedMd5: await md5OfFile(notTar), out: sink() }));
    expect(e2.code).toBe('FEDSLICE_ERR_ARCHIVE');
    const e3 = await errorOf(downloadCifar({ dir: join(root, 'nt'), archive: join(root, 'absent.tar.gz'), out: sink() }));
    expect(e3.message).toContain('absent.tar.gz does not exist');
  });

  it('offline: one line saying to fetch the archive elsewhere and pass --archive', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const dir = join(root, 'offline');
    const e = await errorOf(downloadCifar({ dir, url: `http://127.0.0.1:${port}/cifar-100-binary.tar.gz`, out: sink() }));
    expect(e.code).toBe('FEDSLICE_ERR_DOWNLOAD');
    expect(e.message).toMatch(/cannot reach .*ECONNREFUSED.*offline.*--archive FILE/);
    expect(e.message).not.toContain('\n');
    const e404 = await errorOf(downloadCifar({ dir, url: `${baseUrl}/missing.tar.gz`, out: sink() }));
    expect(e404.message).toContain('answered HTTP 404');
  });

  it('downloads over HTTP with plain progress lines, checks the MD5 and unpacks', async () => {
    const dir = join(root, 'http');
    const out = sink();
    await downloadCifar({ dir, url: `${baseUrl}/cifar-100-binary.tar.gz`, expectedMd5: goodMd5, layout: small, out });
    expect(out.text()).toMatch(/downloading cifar-100-binary\.tar\.gz: 100%/);
    expect(out.text()).not.toContain('\r');
    expect(loadCifarDir(dir, small).train.count).toBe(4);
    // the temporary download is gone: only the set files remain
    expect(readFileSync(join(dir, 'fine_label_names.txt'), 'utf8').split('\n')[0]).toBe('f0');
    expect(spawnSync('ls', ['-A', dir], { encoding: 'utf8' }).stdout.trim().split('\n').sort()).toEqual(
      ['coarse_label_names.txt', 'fine_label_names.txt', 'test.bin', 'train.bin'],
    );
  });
});
