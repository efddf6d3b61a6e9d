/**
 * The aggregator's own WebSocket server: trainers connect here directly (model bytes never pass
 * through the metaserver). The job token is checked on the upgrade request, before any frame is
 * read; a connection is then held to a join's size until its join gives it a slot. Valid updates go
 * to the round loop; anything malformed is answered with an error and dropped.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { decode } from '../core/wire/codec.ts';
import { trainerToAggregator, type AggregatorToTrainer, type MessageOf } from '../core/wire/schema.ts';
import { frameBytes, sendToTrainer } from '../core/wire/socket.ts';
import { tokensEqual, upgradeCredentials } from '../core/wire/token.ts';
import { wsUrl, type ServerTls } from '../core/wire/tls.ts';
import type { AdmissionLimits } from '../core/wire/admission.ts';
import { listenWebSocket, peerAddress, type UpgradeRefusal } from '../core/wire/ws-server.ts';
import { isFedsliceError, type ErrorCode } from '../core/errors.ts';
import type { SlotHolder, TrainerRegistry } from './registry.ts';

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
  /** Bounds on connections that have not joined yet (defaults: DEFAULT_ADMISSION). */
  admission?: Partial<AdmissionLimits>;
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

/** The upgrade check: the job token of the Authorization header, compared in constant time. */
function tokenCheck(expected: string): (req: IncomingMessage) => UpgradeRefusal | null {
  return (req) => {
    const { token } = upgradeCredentials(req.headers);
    if (!token) return { status: 401, reason: 'no job token (send it as "Authorization: Bearer TOKEN")' };
    if (!tokensEqual(token, expected)) return { status: 401, reason: 'wrong job token' };
    return null;
  };
}

export async function startTrainerServer(o: TrainerServerOptions): Promise<TrainerServer> {
  const server = await listenWebSocket({
    name: 'aggregator',
    host: o.host,
    port: o.port,
    ...(o.tls ? { tls: o.tls } : {}),
    maxPayload: o.maxPayload,
    ...(o.admission ? { admission: o.admission } : {}),
    authorize: tokenCheck(o.token),
    onConnection: (conn, req) => serve(conn, req),
    log: o.log,
  });

  const send = sendToTrainer;
  const refuse = (conn: WebSocket, code: ErrorCode, message: string) => {
    send(conn, { type: 'error', code, message });
    conn.close(1008, code);
  };

  function serve(conn: WebSocket, req: IncomingMessage) {
    const peer = peerAddress(req);
    let holder: SlotHolder<WebSocket> | null = null;

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
        try {
          const { holder: h, replaced, rejoined } = o.registry.join(msg.id, conn, msg.shard);
          holder = h;
          server.admit(req);
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
      if (!holder || holder.conn !== conn) return; // never joined, or replaced by a reconnect
      o.registry.leave(conn);
      o.onLeave(holder);
    });
    conn.on('error', (e) => o.log(`aggregator: connection ${holder?.id ?? peer}: ${e.message}`));
  }

  return {
    url: wsUrl(server.scheme, o.advertise ?? o.host, server.port),
    port: server.port,
    send,
    close: () => server.close(),
  };
}
