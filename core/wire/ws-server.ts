/**
 * The WebSocket server under every fedslice server role: plain or TLS, each TCP connection through
 * the admission gate, the credentials checked on the upgrade request (a refusal is an HTTP status
 * and one log line, before any frame is read), and at most a join's worth of bytes read from a
 * connection until the role admits it. After that, frames up to maxPayload.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { Admission, DEFAULT_ADMISSION, type AdmissionLimits } from './admission.ts';
import { receiveFragments } from './socket.ts';
import { listenHttp, type ServerTls } from './tls.ts';

/** Why an upgrade request is refused: the HTTP status and a reason for the log and the body. */
export interface UpgradeRefusal {
  status: 400 | 401;
  reason: string;
}

export interface WireServerOptions {
  /** Prefix of log lines: "aggregator", "metaserver". */
  name: string;
  host: string;
  port: number;
  tls?: ServerTls;
  /** Largest frame read from a connection that has joined. */
  maxPayload: number;
  admission?: Partial<AdmissionLimits>;
  /** null lets the upgrade through; a refusal is answered with its status. */
  authorize: (req: IncomingMessage) => UpgradeRefusal | null;
  onConnection: (conn: WebSocket, req: IncomingMessage) => void;
  log: (line: string) => void;
}

export interface WireServer {
  port: number;
  scheme: 'ws' | 'wss';
  /** The connection of this upgrade request joined: lift the pre-join limits. */
  admit(req: IncomingMessage): void;
  /** Connections that have not joined yet. */
  pendingCount(): number;
  close(): Promise<void>;
}

export function peerAddress(req: IncomingMessage): string {
  return `${req.socket.remoteAddress}:${req.socket.remotePort}`;
}

export async function listenWebSocket(o: WireServerOptions): Promise<WireServer> {
  const gate = new Admission({ ...DEFAULT_ADMISSION, ...o.admission }, o.name, o.log);
  const http = await listenHttp(o.host, o.port, o.tls, gate);
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxPayload, perMessageDeflate: false });

  http.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const refusal = o.authorize(req);
    if (refusal) {
      o.log(`${o.name}: refused a connection from ${peerAddress(req)}: ${refusal.reason}`);
      refuseUpgrade(socket, refusal);
      return;
    }
    wss.handleUpgrade(req, socket, head, (conn) => {
      gate.capBytes(socket);
      receiveFragments(conn);
      o.onConnection(conn, req);
    });
  });
  http.server.on('request', (_req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' }).end('fedslice speaks WebSocket here\n');
  });

  return {
    port: http.port,
    scheme: http.scheme,
    admit: (req) => gate.admit(req.socket),
    pendingCount: () => gate.pendingCount(),
    close: () =>
      new Promise<void>((resolve) => {
        gate.closeAll();
        for (const c of wss.clients) c.terminate();
        wss.close(() => void http.close().then(resolve));
      }),
  };
}

/** Answers the upgrade request with `status` and closes the socket once the answer is out. */
function refuseUpgrade(socket: Duplex, r: UpgradeRefusal): void {
  const body = `${r.reason}\n`;
  const challenge = r.status === 401 ? 'WWW-Authenticate: Bearer realm="fedslice"\r\n' : '';
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status]}\r\nConnection: close\r\nContent-Type: text/plain\r\n${challenge}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
