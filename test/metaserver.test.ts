import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startMetaserver, type Metaserver } from '../metaserver/server.ts';
import { connectMetaserver, type MetaClient } from '../metaserver/client.ts';
import { decode, encode, encodeUnchecked } from '../core/wire/codec.ts';
import { fromMetaserver, type FromMetaserver, type StatusMessage } from '../core/wire/schema.ts';
import { credentialHeaders } from '../core/wire/token.ts';
import { startRole, stopAll } from './helpers/roles.ts';
import { upgradeStatus } from './helpers/wire-client.ts';

let server: Metaserver;
const lines: string[] = [];
const clients: MetaClient[] = [];

beforeAll(async () => {
  server = await startMetaserver({ port: 0, pingIntervalMs: 200, log: (l) => lines.push(l) });
});
afterAll(() => server.close());
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await stopAll();
});

function join(job: string, role: 'aggregator' | 'trainer' | 'observer', id: string, extra: Partial<Parameters<typeof connectMetaserver>[0]> = {}) {
  return connectMetaserver({ url: server.url, job, role, id, token: 'tok', ...(role === 'aggregator' ? { address: `ws://127.0.0.1:1/${id}` } : {}), ...extra }).then((c) => {
    clients.push(c);
    return c;
  });
}

/** A raw socket for sending frames no well-behaved client would (upgraded for `job` with token "tok"). */
type Received = FromMetaserver | { closed: number };

function raw(job: string, opts: WebSocket.ClientOptions = {}, token = 'tok'): Promise<{ ws: WebSocket; next: () => Promise<Received> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(server.url, { headers: credentialHeaders(job, token), ...opts });
    const queue: Received[] = [];
    const waiters: ((m: Received) => void)[] = [];
    const push = (m: Received) => (waiters.length ? waiters.shift()!(m) : queue.push(m));
    ws.on('message', (d) => {
      const r = decode(fromMetaserver, d as Buffer);
      if (r.ok) push(r.msg);
    });
    ws.on('close', (code) => push({ closed: code }));
    ws.on('open', () => resolve({ ws, next: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))) }));
    ws.on('error', reject);
  });
}

describe('metaserver', () => {
  it('introduces an aggregator and its trainers, pushes joins and leaves, and keeps jobs apart', async () => {
    const seen = new Map<string, () => void>();
    const when = (key: string) => new Promise<void>((r) => seen.set(key, r));
    const t1 = await join('A', 'trainer', 't1');
    const agg = await join('A', 'aggregator', 'agg', {
      onPeerJoined: (p) => seen.get(`joined:${p.id}`)?.(),
      onPeerLeft: (p) => seen.get(`left:${p.id}`)?.(),
    });
    expect(agg.peers().map((p) => p.id)).toEqual(['t1']);
    expect(await t1.waitForAggregator(2000)).toBe('ws://127.0.0.1:1/agg');
    const other = await join('B', 'trainer', 't1'); // same id, other job
    expect(other.peers()).toEqual([]);
    const t2Joined = when('joined:t2');
    const t2 = await join('A', 'trainer', 't2');
    expect(t2.peers().map((p) => p.role)).toEqual(['aggregator']);
    await t2Joined;
    const t1Left = when('left:t1');
    t1.close();
    await t1Left;
    expect(server.jobs().get('A')!.map((p) => p.id).sort()).toEqual(['agg', 't2']);
    expect(server.jobs().get('B')!.map((p) => p.id)).toEqual(['t1']);
  });

  it('forwards the aggregator status to observers of its job only', async () => {
    const seen: StatusMessage[] = [];
    const elsewhere: StatusMessage[] = [];
    let heard = () => {};
    let heardElsewhere = () => {};
    const agg = await join('S', 'aggregator', 'agg');
    const agg2 = await join('S2', 'aggregator', 'agg2');
    await join('S', 'observer', 'runner', { onStatus: (s) => (seen.push(s), heard()) });
    await join('S2', 'observer', 'runner', { onStatus: (s) => (elsewhere.push(s), heardElsewhere()) });
    await new Promise<void>((r) => {
      heard = r;
      agg.sendStatus({ state: 'training', round: 2, rounds: 5 });
    });
    expect(seen).toEqual([{ type: 'status', job: 'S', state: 'training', round: 2, rounds: 5 }]);
    // Job S2's own status comes after anything the metaserver sent its observer before it.
    await new Promise<void>((r) => {
      heardElsewhere = r;
      agg2.sendStatus({ state: 'waiting', round: 0, rounds: 1 });
    });
    expect(elsewhere).toEqual([{ type: 'status', job: 'S2', state: 'waiting', round: 0, rounds: 1 }]);
  });

  it('refuses a wrong token and a second aggregator, and keeps serving', async () => {
    await join('T', 'aggregator', 'agg');
    // refused at the upgrade (HTTP 401), before any frame: the line says what to do
    await expect(join('T', 'trainer', 'x', { token: 'nope' })).rejects.toThrow(
      /refused trainer x for job T: wrong token for job T; give every role of the job the same token \(FEDSLICE_TOKEN or --token-file\)/,
    );
    await expect(join('T', 'aggregator', 'agg2')).rejects.toThrow(/already has an aggregator/);
    expect(lines.some((l) => /metaserver: refused a connection from 127\.0\.0\.1:\d+: job T: wrong job token/.test(l))).toBe(true);
    expect(lines.every((l) => !l.includes('nope'))).toBe(true); // tokens never logged
    await expect(join('T', 'trainer', 'y')).resolves.toBeTruthy();
  });

  it('checks job and token on the upgrade: none, wrong and right; a job is fixed by its first hello', async () => {
    await join('U', 'aggregator', 'agg');
    expect(await upgradeStatus(server.url, {})).toBe(401);
    expect(await upgradeStatus(server.url, { Authorization: 'Bearer tok' })).toBe(400); // no job named
    expect(await upgradeStatus(server.url, credentialHeaders('U', 'nope'))).toBe(401);
    expect(await upgradeStatus(server.url, credentialHeaders('U', 'tok'))).toBe(101);
    expect(lines.some((l) => /metaserver: refused a connection from 127\.0\.0\.1:\d+: no job token/.test(l))).toBe(true);
    // a job nobody has said hello to yet: both upgrades pass, the first hello fixes the token
    const first = await raw('V', {}, 'one');
    const second = await raw('V', {}, 'two');
    first.ws.send(encode({ type: 'hello', job: 'V', role: 'aggregator', id: 'agg', address: 'ws://127.0.0.1:1/v' }));
    expect(await first.next()).toMatchObject({ type: 'welcome' });
    second.ws.send(encode({ type: 'hello', job: 'V', role: 'trainer', id: 't' }));
    expect(await second.next()).toMatchObject({ type: 'error', code: 'FEDSLICE_ERR_TOKEN' });
    expect(await upgradeStatus(server.url, credentialHeaders('V', 'two'))).toBe(401);
    // a hello for another job than the one the upgrade named
    const other = await raw('W');
    other.ws.send(encode({ type: 'hello', job: 'U', role: 'trainer', id: 'sneaky' }));
    expect(await other.next()).toMatchObject({ type: 'error', code: 'FEDSLICE_ERR_HELLO', message: expect.stringMatching(/opened for job W/) });
    first.ws.close();
  });

  it('answers garbage, a text frame, a wrong-typed hello and an oversized frame without falling over', async () => {
    const a = await raw('J');
    a.ws.send(Buffer.from([0xc1, 0x00, 0x01]));
    expect(await a.next()).toMatchObject({ type: 'error', code: 'FEDSLICE_ERR_FRAME' });
    const b = await raw('J');
    b.ws.send(encodeUnchecked({ type: 'hello', job: 'J', role: 'wizard', id: 'w' }));
    expect(await b.next()).toMatchObject({ type: 'error', message: expect.stringMatching(/role must be one of/) });
    const c = await raw('J');
    c.ws.send(Buffer.alloc(200_000));
    expect(await c.next()).toEqual({ closed: 1009 });
    const d = await raw('J');
    d.ws.send('hello', { binary: false });
    expect(await d.next()).toMatchObject({ type: 'error', message: expect.stringMatching(/text frame/) });
    await expect(join('after-garbage', 'trainer', 'ok')).resolves.toBeTruthy();
  });

  it('drops a peer that stops answering pings, and says so', async () => {
    const leftFor: string[] = [];
    let told = () => {};
    const aggregatorTold = new Promise<void>((r) => (told = r));
    await join('P', 'aggregator', 'agg', {
      onPeerLeft: (p, reason) => {
        leftFor.push(`${p.id}:${reason}`);
        if (p.id === 'zombie') told();
      },
    });
    const silent = await raw('P', { autoPong: false });
    silent.ws.send(encode({ type: 'hello', job: 'P', role: 'trainer', id: 'zombie' }));
    expect(await silent.next()).toMatchObject({ type: 'welcome' });
    const gone = new Promise<{ reason: string }>((r) => server.on('left', (e) => e.peer.id === 'zombie' && r(e)));
    expect(await gone).toMatchObject({ reason: 'timeout' });
    await aggregatorTold;
    expect(leftFor).toContain('zombie:timeout');
  });

  it('client: one clear error when nothing listens at the URL', async () => {
    await expect(connectMetaserver({ url: 'ws://127.0.0.1:1', job: 'j', role: 'trainer', id: 'x', token: 't' })).rejects.toThrow(
      /cannot reach the metaserver at ws:\/\/127.0.0.1:1 \(ECONNREFUSED\)/,
    );
  });

  it('CLI: prints its address, serves, and exits 0 on SIGTERM', async () => {
    const m = startRole('metaserver', ['metaserver', '--port', '0']);
    const [, url] = await m.waitFor(/listening on (ws:\/\/\S+)/);
    const c = await connectMetaserver({ url, job: 'cli', role: 'trainer', id: 'x', token: 't' });
    c.close();
    m.child.kill('SIGTERM');
    expect(await m.exited).toEqual({ code: 0, signal: null });
  });
});
