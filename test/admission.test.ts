// The admission rules alone, on real loopback sockets with fake timers: the deadline, the pending
// bounds (total and per address), the pre-join byte cap, and what a join lifts.
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Admission, DEFAULT_ADMISSION, type AdmissionLimits } from '../core/wire/admission.ts';

let server: Server;
let accepted: Socket[];
let clients: Socket[];
let gate: Admission;
let lines: string[];

async function start(limits: Partial<AdmissionLimits>) {
  lines = [];
  gate = new Admission({ ...DEFAULT_ADMISSION, ...limits }, 'test', (l) => lines.push(l));
  accepted = [];
  clients = [];
  server = createServer((s) => {
    s.on('error', () => {});
    if (gate.accept(s)) accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
}

/** Opens a client and waits until the server has taken (or refused) it. */
function client(): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.on('error', () => {});
  clients.push(socket);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return new Promise((resolve) => server.once('connection', () => setImmediate(() => resolve({ socket, closed }))));
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients) c.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('Admission', () => {
  it('closes a connection that has not joined when the deadline passes, not before', async () => {
    await start({ handshakeTimeoutMs: 1000 });
    const a = await client();
    vi.advanceTimersByTime(999);
    expect(gate.pendingCount()).toBe(1);
    vi.advanceTimersByTime(1);
    await a.closed;
    expect(gate.pendingCount()).toBe(0);
    expect(lines).toEqual(['test: closed a connection from 127.0.0.1: it did not join within 1 s']);
  });

  it('a joined connection has no deadline and no longer counts', async () => {
    await start({ handshakeTimeoutMs: 1000, maxPendingPerAddress: 1 });
    await client();
    gate.admit(accepted[0]);
    expect(gate.pendingCount()).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(accepted[0].destroyed).toBe(false);
    await client(); // the one pending slot is free again
    expect(accepted).toHaveLength(2);
  });

  it('refuses past maxPendingPerAddress, and counts a closed connection out', async () => {
    await start({ maxPendingPerAddress: 2, maxPending: 3 });
    const first = await client();
    await client();
    const third = await client();
    await third.closed;
    expect(lines.at(-1)).toBe('test: refused a connection from 127.0.0.1: 2 connections from 127.0.0.1 are already waiting to join (maxPendingPerAddress)');
    first.socket.destroy();
    await new Promise<void>((r) => accepted[0].once('close', () => r()));
    expect(gate.pendingCount()).toBe(1);
    await client();
    expect(gate.pendingCount()).toBe(2);
  });

  it('refuses past maxPending whatever the address', async () => {
    await start({ maxPendingPerAddress: 10, maxPending: 1 });
    await client();
    const over = await client();
    await over.closed;
    expect(lines.at(-1)).toBe('test: refused a connection from 127.0.0.1: 1 connections are already waiting to join (maxPending)');
  });

  it('closes a connection that sends more than preJoinBytes before joining; after a join the cap is gone', async () => {
    await start({ preJoinBytes: 1000 });
    const stranger = await client();
    gate.capBytes(accepted[0]);
    stranger.socket.write(Buffer.alloc(1000));
    const peer = await client();
    gate.capBytes(accepted[1]);
    let got = 0;
    const all = new Promise<void>((r) =>
      accepted[1].on('data', (d: Buffer) => {
        got += d.length;
        if (got >= 100_000) r();
      }),
    );
    gate.admit(accepted[1]);
    peer.socket.write(Buffer.alloc(100_000));
    stranger.socket.write(Buffer.alloc(1));
    await stranger.closed;
    expect(lines).toEqual(['test: closed a connection from 127.0.0.1: it sent more than 1000 bytes before joining']);
    await all;
    expect(accepted[1].destroyed).toBe(false);
  });
});
