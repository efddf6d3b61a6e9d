/**
 * Admission: what a server allows a connection before it has joined. Until the role says a
 * connection joined (a valid join or hello), it is bounded in number (all addresses, and per
 * address), in time (from the TCP accept to the join) and in bytes (a join's size), so strangers
 * cannot make a server buffer model-sized frames or hold sockets open. A connection that joined
 * is no longer counted, and frames up to the server's maxPayload are read from it.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface AdmissionLimits {
  /** Connections that have not joined yet, from all addresses together. */
  maxPending: number;
  /** Connections that have not joined yet, from one address. */
  maxPendingPerAddress: number;
  /** From the TCP accept to a successful join (TLS, upgrade, token, join message), in ms. */
  handshakeTimeoutMs: number;
  /** Bytes a connection may send after its upgrade and before it has joined (a join is < 1 KiB). */
  preJoinBytes: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = {
  maxPending: 128,
  maxPendingPerAddress: 32,
  handshakeTimeoutMs: 10_000,
  preJoinBytes: 64 * 1024,
};

interface Pending {
  address: string;
  /** The TCP socket, and the TLS socket over it when there is one. */
  sockets: Duplex[];
  timer: NodeJS.Timeout;
  released: boolean;
  uncap?: () => void;
}

export class Admission {
  private readonly bySocket = new Map<Duplex, Pending>();
  private readonly perAddress = new Map<string, number>();
  private total = 0;

  constructor(
    readonly limits: AdmissionLimits,
    /** Prefix of the log lines ("aggregator", "metaserver"). */
    private readonly name: string,
    private readonly log: (line: string) => void,
  ) {}

  /** A new TCP connection; destroyed at once (false) when too many are already waiting to join. */
  accept(socket: Socket): boolean {
    const address = socket.remoteAddress ?? 'an unknown address';
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (this.total >= this.limits.maxPending || fromAddress >= this.limits.maxPendingPerAddress) {
      const which = fromAddress >= this.limits.maxPendingPerAddress ? `${fromAddress} connections from ${address} are` : `${this.total} connections are`;
      const limit = fromAddress >= this.limits.maxPendingPerAddress ? 'maxPendingPerAddress' : 'maxPending';
      this.log(`${this.name}: refused a connection from ${address}: ${which} already waiting to join (${limit})`);
      socket.destroy();
      return false;
    }
    const p: Pending = { address, sockets: [socket], released: false, timer: setTimeout(() => this.expire(p), this.limits.handshakeTimeoutMs) };
    p.timer.unref();
    this.bySocket.set(socket, p);
    this.total++;
    this.perAddress.set(address, fromAddress + 1);
    socket.once('close', () => this.release(p));
    return true;
  }

  /** The same connection seen through another stream (the TLS socket over the TCP one). */
  alias(wrapped: Duplex, socket: Socket): void {
    const p = this.bySocket.get(socket);
    if (!p) return;
    p.sockets.push(wrapped);
    this.bySocket.set(wrapped, p);
    wrapped.once('close', () => this.release(p));
  }

  /** Counts what an upgraded connection sends before it joins; past preJoinBytes it is closed. */
  capBytes(socket: Duplex): void {
    const p = this.bySocket.get(socket);
    if (!p) return;
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= this.limits.preJoinBytes) return;
      this.log(`${this.name}: closed a connection from ${p.address}: it sent more than ${this.limits.preJoinBytes} bytes before joining`);
      this.drop(p);
    };
    socket.on('data', onData);
    p.uncap = () => socket.off('data', onData);
  }

  /** The connection joined: no deadline, no byte cap, no longer counted. */
  admit(socket: Duplex): void {
    const p = this.bySocket.get(socket);
    if (p) this.release(p);
  }

  /** Connections that have not joined yet. */
  pendingCount(): number {
    return this.total;
  }

  /** Destroys every connection that has not joined (the server is shutting down). */
  closeAll(): void {
    for (const p of new Set(this.bySocket.values())) this.drop(p);
  }

  private expire(p: Pending): void {
    if (p.released) return;
    this.log(`${this.name}: closed a connection from ${p.address}: it did not join within ${this.limits.handshakeTimeoutMs / 1000} s`);
    this.drop(p);
  }

  private drop(p: Pending): void {
    this.release(p);
    for (const s of p.sockets) s.destroy();
  }

  private release(p: Pending): void {
    if (p.released) return;
    p.released = true;
    clearTimeout(p.timer);
    p.uncap?.();
    for (const s of p.sockets) this.bySocket.delete(s);
    this.total--;
    const left = (this.perAddress.get(p.address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(p.address, left);
    else this.perAddress.delete(p.address);
  }
}
