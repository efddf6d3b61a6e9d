/** Clients that behave like strangers on the wire: upgrades with chosen headers, raw floods, idle sockets. */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

/** The HTTP status an upgrade request with these headers gets (101 when the WebSocket opens). */
export function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    ws.on('error', (e) => {
      if (ws.readyState === WebSocket.CONNECTING) reject(e);
    });
  });
}

/** Host and port of a ws:// URL. */
export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** The bytes of an upgrade request, as a client writes them before it hears any answer. */
export function upgradeRequest(host: string, port: number, headers: Record<string, string>): Buffer {
  const lines = [
    'GET / HTTP/1.1',
    `Host: ${host}:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
}

/** The header of one masked binary frame of `length` bytes (mask key 0: the payload goes as is). */
export function binaryFrameHeader(length: number): Buffer {
  const h = Buffer.alloc(14);
  h[0] = 0x82; // FIN, binary
  h[1] = 0x80 | 127; // masked, 64-bit length
  h.writeBigUInt64BE(BigInt(length), 2);
  return h; // bytes 10..13: the zero mask key
}

/**
 * A stranger that writes an upgrade request and, without waiting for the answer, one binary frame
 * of `payload`. Resolves when the server has closed the connection, with what it answered.
 */
export function flood(url: string, headers: Record<string, string>, payload: Buffer): Promise<{ answer: string }> {
  const { host, port } = hostPort(url);
  return new Promise((resolve) => {
    const socket: Socket = connect(port, host);
    let answer = '';
    socket.on('data', (d) => {
      if (answer.length < 512) answer += d.toString('latin1');
    });
    socket.on('error', () => {}); // the server ends it mid-write: that is the point
    socket.on('close', () => resolve({ answer: answer.split('\r\n')[0] }));
    socket.on('connect', () => {
      socket.write(upgradeRequest(host, port, headers));
      socket.write(binaryFrameHeader(payload.length));
      socket.end(payload);
    });
  });
}

/** A TCP connection that sends `first` (or nothing) and then stays silent; resolves once open. */
export function idleSocket(url: string, first?: Buffer): Promise<{ socket: Socket; closed: Promise<void> }> {
  const { host, port } = hostPort(url);
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => {});
    socket.once('connect', () => {
      if (first) socket.write(first);
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

/** Peak resident memory of a process (VmHWM), in bytes. */
export function peakMemoryBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB/m);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
