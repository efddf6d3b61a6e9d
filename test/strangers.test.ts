// Strangers on the wire, over real sockets against real aggregator processes: a flood of
// model-sized frames from connections that never joined costs the aggregator little memory; the
// token is checked on the upgrade; connections that never join are closed by the handshake deadline
// and bounded in number.
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMetaserver, type Metaserver } from '../metaserver/server.ts';
import { connectMetaserver } from '../metaserver/client.ts';
import { credentialHeaders } from '../core/wire/token.ts';
import type { RunRecord } from '../core/results/types.ts';
import { jsonl, startRole, stopAll, tempDir } from './helpers/roles.ts';
import { makeTestData, writeConfig } from './helpers/experiment.ts';
import { flood, idleSocket, peakMemoryBytes, upgradeRequest, upgradeStatus, hostPort } from './helpers/wire-client.ts';

const TOKEN = 'strangers-token';
const env = { FEDSLICE_TOKEN: TOKEN };
const MB = 1 << 20;
let dir: string;
let dataDir: string;
let meta: Metaserver;

beforeAll(async () => {
  dir = tempDir('fedslice-strangers-');
  dataDir = makeTestData(dir);
  meta = await startMetaserver({ port: 0, log: () => {} });
}, 300_000);
afterAll(() => meta.close());
afterEach(() => stopAll());

/** A real aggregator process for a one-trainer, one-round job; resolves once it waits for trainers. */
async function aggregator(name: string, o: { width?: number; extra?: string[] } = {}) {
  // 1 step on a tenth of the set: the job itself takes seconds even at width 1/2
  const cfg = writeConfig(dir, `${name}.json`, { dataDir, name, worldSize: 1, rounds: 1, steps: 1, fraction: 0.1, ...(o.width ? { width: o.width } : {}) });
  const results = join(dir, `results-${name}`);
  const role = startRole(`aggregator ${name}`, ['aggregator', '--config', cfg, '--metaserver', meta.url, '--results', results, ...(o.extra ?? [])], env);
  // generous: a role starts in seconds on a quiet machine, but minutes on a loaded one
  const [, url] = await role.waitFor(/listening for trainers on (ws:\/\/\S+)/, 600_000);
  await role.waitFor(/waiting for 1 trainers/, 600_000);
  return { role, url, cfg, results };
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

describe('a flood of strangers', () => {
  it('30 x 40 MB frames without a token and 30 with a token but no join leave the aggregator under 100 MB more; the job then runs', async () => {
    const agg = await aggregator('flood', { width: 0.5 }); // frame limit ~57 MB: a 40 MB frame is allowed after a join
    const pid = agg.role.child.pid!;
    const before = peakMemoryBytes(pid);
    const payload = Buffer.alloc(40 * MB);
    const noToken = await Promise.all(Array.from({ length: 30 }, () => flood(agg.url, {}, payload)));
    const noJoin = await Promise.all(Array.from({ length: 30 }, () => flood(agg.url, credentialHeaders('flood', TOKEN), payload)));
    const after = peakMemoryBytes(pid);
    console.log(`aggregator peak memory (VmHWM): ${(before / MB).toFixed(0)} MB before the flood, ${(after / MB).toFixed(0)} MB after (+${((after - before) / MB).toFixed(0)} MB)`);
    expect(after - before).toBeLessThan(100 * MB);
    // The server closes each one while its frame is still arriving, so the client may see a reset
    // instead of the answer; none of the tokenless ones was upgraded, each of the others was.
    expect(noToken.filter((r) => r.answer.startsWith('HTTP/1.1 101'))).toEqual([]);
    expect(noJoin.filter((r) => r.answer.startsWith('HTTP/1.1 401'))).toEqual([]);
    const out = agg.role.output();
    expect(count(out, /aggregator: refused a connection from 127\.0\.0\.1:\d+: no job token/)).toBe(30);
    expect(count(out, /aggregator: closed a connection from 127\.0\.0\.1: it sent more than 65536 bytes before joining/)).toBe(30);

    const trainer = startRole('trainer', ['trainer', '--config', agg.cfg, '--metaserver', meta.url, '--id', 'after-flood'], env);
    const [t, a] = await Promise.all([trainer.exited, agg.role.exited]);
    expect([t.code, a.code]).toEqual([0, 0]);
    expect(jsonl<RunRecord>(join(agg.results, 'runs.jsonl')).map((r) => r.status)).toEqual(['started', 'completed']);
  }, 900_000); // a width-1/2 job: two evaluations and a training step, slow on a loaded 2-core machine
});

describe('the token on the upgrade', () => {
  it('no token and a wrong token get HTTP 401 and one log line each; the right token opens the socket', async () => {
    const agg = await aggregator('tokens');
    expect(await upgradeStatus(agg.url, {})).toBe(401);
    expect(await upgradeStatus(agg.url, credentialHeaders('tokens', 'not-the-token'))).toBe(401);
    expect(await upgradeStatus(agg.url, credentialHeaders('tokens', TOKEN))).toBe(101);
    const out = agg.role.output();
    expect(count(out, /aggregator: refused a connection from 127\.0\.0\.1:\d+: no job token/)).toBe(1);
    expect(count(out, /aggregator: refused a connection from 127\.0\.0\.1:\d+: wrong job token/)).toBe(1);
    expect(out).not.toContain('not-the-token');
  }, 600_000);

  it('a trainer the aggregator refuses with 401 stops with one line saying the token is wrong and what to do', async () => {
    const agg = await aggregator('decoy');
    // Another metaserver, where a decoy registered the real aggregator's address under another token:
    // the trainer gets past that metaserver and is refused by the aggregator itself.
    const other = await startMetaserver({ port: 0, log: () => {} });
    try {
      const decoy = await connectMetaserver({ url: other.url, job: 'decoy', role: 'aggregator', id: 'decoy', token: 'other-token', address: agg.url });
      const t = startRole('trainer', ['trainer', '--config', agg.cfg, '--metaserver', other.url, '--id', 'misled'], { FEDSLICE_TOKEN: 'other-token' });
      expect((await t.exited).code).toBe(1);
      expect(t.output().match(/^fedslice: error: .*$/gm)).toEqual([
        `fedslice: error: the aggregator at ${agg.url} refused trainer misled: wrong token for job decoy; give every role of the job the same token (FEDSLICE_TOKEN or --token-file)`,
      ]);
      decoy.close();
    } finally {
      await other.close();
    }
  }, 600_000);
});

describe('connections that never join', () => {
  it('200 idle ones (silent TCP, half a request, upgraded without a join) are all closed by the handshake deadline', async () => {
    const agg = await aggregator('idle', { extra: ['--handshake-timeout', '1', '--max-pending', '300', '--max-pending-per-address', '300'] });
    const { host, port } = hostPort(agg.url);
    const half = upgradeRequest(host, port, credentialHeaders('idle', TOKEN)).subarray(0, 40);
    const raw = await Promise.all(Array.from({ length: 100 }, (_, i) => idleSocket(agg.url, i % 2 ? half : undefined)));
    const upgraded = await Promise.all(
      Array.from(
        { length: 100 },
        () =>
          new Promise<Promise<void>>((resolve, reject) => {
            const ws = new WebSocket(agg.url, { headers: credentialHeaders('idle', TOKEN) });
            const closed = new Promise<void>((r) => ws.once('close', () => r()));
            ws.once('open', () => resolve(closed));
            ws.once('error', reject);
          }),
      ),
    );
    await Promise.all([...raw.map((r) => r.closed), ...upgraded]);
    expect(count(agg.role.output(), /aggregator: closed a connection from 127\.0\.0\.1: it did not join within 1 s/)).toBe(200);
    // and the aggregator still takes a real trainer
    const trainer = startRole('trainer', ['trainer', '--config', agg.cfg, '--metaserver', meta.url, '--id', 'after-idle'], env);
    expect([(await trainer.exited).code, (await agg.role.exited).code]).toEqual([0, 0]);
  }, 600_000);

  it('past maxPendingPerAddress a new connection is closed at once; once the strangers are gone, peers join again', async () => {
    const m = await startMetaserver({ port: 0, admission: { maxPendingPerAddress: 5, handshakeTimeoutMs: 60_000 }, log: () => {} });
    try {
      const strangers = await Promise.all(Array.from({ length: 5 }, () => idleSocket(m.url)));
      const sixth = await idleSocket(m.url);
      await sixth.closed;
      expect(strangers.every((s) => !s.socket.destroyed)).toBe(true);
      for (const s of strangers) s.socket.destroy();
      await Promise.all(strangers.map((s) => s.closed));
      const c = await connectMetaserver({ url: m.url, job: 'j', role: 'trainer', id: 't', token: 'tok' });
      c.close();
    } finally {
      await m.close();
    }
  });
});
