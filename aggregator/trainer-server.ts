/**
 * The aggregator's own WebSocket server: trainers connect here directly (model bytes never pass
 * through the metaserver). It checks the job token on join, gives each trainer its slot, and
 * hands valid updates to the round loop; anything malformed is answered with an error and dropped.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { decode } from '../core/wire/codec.ts';
import { trainerToAggregator, type AggregatorToTrainer, type MessageOf } from '../core/wire/schema.ts';
import { frameBytes, sendToTrainer } from '../core/wire/socket.ts';
import { tokensEqual } from '../core/wire/token.ts';
import { listenHttp, wsUrl, type ServerTls } from '../core/wire/tls.ts';
import { isFedsliceError, type ErrorCode } from '../core/errors.ts';
import type { SlotHolder, TrainerRegistry } from './registry.ts';

/** How long a new connection may take to say who it is. */
const JOIN_DEADLINE_MS = 10_000;

export interface TrainerServerOptions {
  host: string;
  port: number;
  /** The host put into the URL trainers are told to connect to (default: host). */
  advertise?: string;
  /** Cert and key: listen for wss:// instead of ws://. */
  tls?: ServerTls;
  job: string;
  token: string;
  maxPayload: number;
  registry: TrainerRegistry<WebSocket>;
  log: (line: string) => void;
  onJoin: (h: SlotHolder<WebSocket>, rejoined: boolean) => void;
  onLeave: (h: SlotHolder<WebSocket>) => void;
  onUpdate: (h: SlotHolder<WebSocket>, msg: MessageOf<'update'>, bytes: number) => void;
}

export interface TrainerServer {
  url: string;
  port: number;
  /** Sends a message; returns the bytes written (0 when the trainer is gone). */
  send(conn: WebSocket, msg: AggregatorToTrainer): number;
  close(): Promise<void>;
}

export async function startTrainerServer(o: TrainerServerOptions): Promise<TrainerServer> {
  const http = await listenHttp(o.host, o.port, o.tls);
  const wss = new WebSocketServer({ server: http.server, maxPayload: o.maxPayload });
  wss.on('error', (e) => o.log(`aggregator: server error: ${e.message}`));
  const port = http.port;

  const send = sendToTrainer;
  const refuse = (conn: WebSocket, code: ErrorCode, message: string) => {
    send(conn, { type: 'error', code, message });
    conn.close(1008, code);
  };

  wss.on('connection', (conn, req) => {
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    let holder: SlotHolder<WebSocket> | null = null;
    const deadline = setTimeout(() => {
      if (!holder) refuse(conn, 'FEDSLICE_ERR_JOIN', `no join message within ${JOIN_DEADLINE_MS / 1000}s`);
    }, JOIN_DEADLINE_MS);

    conn.on('message', (data, isBinary) => {
      const bytes = frameBytes(data);
      const decoded = isBinary ? decode(trainerToAggregator, bytes) : ({ ok: false, code: 'FEDSLICE_ERR_FRAME', error: 'text frame; fedslice speaks binary msgpack frames' } as const);
      if (!decoded.ok) {
        o.log(`aggregator: dropped a bad frame from ${holder?.id ?? peer}: ${decoded.error}`);
        send(conn, { type: 'error', code: decoded.code, message: decoded.error });
        return;
      }
      const msg = decoded.msg;
      if (!holder) {
        if (msg.type !== 'join') {
          refuse(conn, 'FEDSLICE_ERR_JOIN', `expected a join message first, got ${msg.type}`);
          return;
        }
        if (msg.job !== o.job) {
          o.log(`aggregator: refused ${msg.id} from ${peer}: job ${msg.job} is not ${o.job}`);
          refuse(conn, 'FEDSLICE_ERR_JOB', `this aggregator serves job ${o.job}, not ${msg.job}`);
          return;
        }
        if (!tokensEqual(msg.token, o.token)) {
          o.log(`aggregator: refused ${msg.id} from ${peer}: wrong job token`);
          refuse(conn, 'FEDSLICE_ERR_TOKEN', `wrong job token for job ${o.job}`);
          return;
        }
        try {
          const { holder: h, replaced, rejoined } = o.registry.join(msg.id, conn, msg.shard);
          holder = h;
          clearTimeout(deadline);
          if (replaced && replaced !== conn) replaced.close(1000, 'replaced by a new connection');
          send(conn, { type: 'joined', job: o.job, id: h.id, shard: h.slot, worldSize: o.registry.worldSize });
          o.onJoin(h, rejoined);
        } catch (e) {
          if (!isFedsliceError(e)) throw e;
          o.log(`aggregator: refused ${msg.id}: ${e.message}`);
          refuse(conn, e.code, e.message);
        }
        return;
      }
      if (msg.type === 'update') {
        o.onUpdate(holder, msg, bytes.byteLength);
        return;
      }
      o.log(`aggregator: dropped an unexpected ${msg.type} message from ${holder.id}`);
      send(conn, { type: 'error', code: 'FEDSLICE_ERR_UNEXPECTED', message: `unexpected ${msg.type} message` });
    });

    conn.on('close', () => {
      clearTimeout(deadline);
      if (!holder || holder.conn !== conn) return; // never joined, or replaced by a reconnect
      o.registry.leave(conn);
      o.onLeave(holder);
    });
    conn.on('error', (e) => o.log(`aggregator: connection ${holder?.id ?? peer}: ${e.message}`));
  });

  return {
    url: wsUrl(http.scheme, o.advertise ?? o.host, port),
    port,
    send,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => void http.close().then(resolve));
      }),
  };
}
