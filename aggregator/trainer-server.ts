/**
 * The aggregator's own WebSocket server: trainers connect here directly (model bytes never pass
 * through the metaserver). The job token is checked on the upgrade request, before any frame is
 * read; a connection is then held to a join's size until its join gives it a slot. Joins,
 * departures, ready announcements and updates go to the round loop (which grants updates a few at
 * a time, aggregator/update-credits.ts); a malformed frame, a refused ready or a refused update is
 * answered with an error and dropped.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { decode } from '../core/wire/codec.ts';
import { trainerToAggregator, type MessageOf } from '../core/wire/schema.ts';
import { byteLengthOf, frameBytes } from '../core/wire/socket.ts';
import { tokensEqual, upgradeCredentials } from '../core/wire/token.ts';
import { wsUrl, type ServerTls } from '../core/wire/tls.ts';
import type { AdmissionLimits } from '../core/wire/admission.ts';
import { listenWebSocket, peerAddress, type UpgradeRefusal, type WireServer } from '../core/wire/ws-server.ts';
import { isFedsliceError, type ErrorCode } from '../core/errors.ts';
import type { SlotHolder, TrainerRegistry } from './registry.ts';
import type { FederationLoop } from './federation-loop.ts';
import type { SocketOutbox } from './outbox.ts';

/** How long closing waits for the last frames (done) to be written. */
const FLUSH_MS = 2_000;

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
  loop: Pick<FederationLoop<WebSocket>, 'onJoin' | 'onLeave' | 'onReady' | 'onUpdate'>;
  /** A joined trainer's step-log point (RunRecorder.step). */
  onSteps: (h: SlotHolder<WebSocket>, msg: MessageOf<'steps'>) => void;
  outbox: SocketOutbox;
  log: (line: string) => void;
}

export interface TrainerServer {
  url: string;
  port: number;
  /** Tells every connected trainer the run is over. */
  sendDone(reason: 'completed' | 'failed', message?: string): void;
  /** Waits (bounded) for frames still being written, then closes every connection and the server. */
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
  const server: WireServer = await listenWebSocket({
    name: 'aggregator',
    host: o.host,
    port: o.port,
    ...(o.tls ? { tls: o.tls } : {}),
    maxPayload: o.maxPayload,
    ...(o.admission ? { admission: o.admission } : {}),
    authorize: tokenCheck(o.token),
    onConnection: (conn, req) => serveTrainer(o, server, conn, req),
    log: o.log,
  });
  return {
    url: wsUrl(server.scheme, o.advertise ?? o.host, server.port),
    port: server.port,
    sendDone: (reason, message) => {
      for (const h of o.registry.connected()) if (h.conn) o.outbox.send(h.conn, { type: 'done', job: o.job, reason, ...(message ? { message } : {}) });
    },
    close: async () => {
      await o.outbox.flush(FLUSH_MS);
      await server.close();
    },
  };
}

/** One trainer connection: a join first, then updates. */
function serveTrainer(o: TrainerServerOptions, server: WireServer, conn: WebSocket, req: IncomingMessage): void {
  const peer = peerAddress(req);
  let holder: SlotHolder<WebSocket> | null = null;
  const refuse = (code: ErrorCode, message: string) => {
    o.outbox.send(conn, { type: 'error', code, message });
    conn.close(1008, code);
  };

  conn.on('message', (data, isBinary) => {
    const bytes = frameBytes(data);
    o.outbox.received(byteLengthOf(bytes));
    const decoded = isBinary ? decode(trainerToAggregator, bytes) : ({ ok: false, code: 'FEDSLICE_ERR_FRAME', error: 'text frame; fedslice speaks binary msgpack frames' } as const);
    if (!decoded.ok) {
      o.log(`aggregator: dropped a bad frame from ${holder?.id ?? peer}: ${decoded.error}`);
      o.outbox.send(conn, { type: 'error', code: decoded.code, message: decoded.error });
      return;
    }
    const msg = decoded.msg;
    if (!holder) {
      if (msg.type !== 'join') return refuse('FEDSLICE_ERR_JOIN', `expected a join message first, got ${msg.type}`);
      holder = join(o, conn, msg, peer, refuse);
      if (holder) server.admit(req);
      return;
    }
    if (msg.type === 'steps') return acceptSteps(o, holder, msg);
    if (msg.type === 'ready') {
      const refused = o.loop.onReady(holder, msg);
      if (refused) {
        o.log(`aggregator: refused a ready update from ${holder.id}: ${refused}`);
        o.outbox.send(conn, { type: 'error', code: 'FEDSLICE_ERR_UPDATE', message: refused, round: msg.round });
      }
      return;
    }
    if (msg.type !== 'update') {
      o.log(`aggregator: dropped an unexpected ${msg.type} message from ${holder.id}`);
      o.outbox.send(conn, { type: 'error', code: 'FEDSLICE_ERR_UNEXPECTED', message: `unexpected ${msg.type} message` });
      return;
    }
    const refused = o.loop.onUpdate(holder, msg);
    if (refused) {
      o.log(`aggregator: refused an update from ${holder.id}: ${refused}`);
      o.outbox.send(conn, { type: 'error', code: 'FEDSLICE_ERR_UPDATE', message: refused, round: msg.round });
    }
  });

  conn.on('close', () => {
    if (!holder || holder.conn !== conn) return; // never joined, or replaced by a reconnect
    o.registry.leave(conn);
    o.log(`aggregator: trainer ${holder.id} (slot ${holder.slot}) left (${o.registry.connected().length}/${o.registry.worldSize})`);
    o.loop.onLeave(holder);
  });
  conn.on('error', (e) => o.log(`aggregator: connection ${holder?.id ?? peer}: ${e.message}`));
}

/** A step-log point goes to the record of the job's run; one for another job is dropped with a line. */
function acceptSteps(o: TrainerServerOptions, h: SlotHolder<WebSocket>, msg: MessageOf<'steps'>): void {
  if (msg.job !== o.job) {
    o.log(`aggregator: dropped a step-log point from ${h.id} for job ${msg.job}, not ${o.job}`);
    return;
  }
  o.onSteps(h, msg);
}

/** Checks a join (job, slot) and registers the trainer; null (after refusing) if it cannot join. */
function join(o: TrainerServerOptions, conn: WebSocket, msg: MessageOf<'join'>, peer: string, refuse: (code: ErrorCode, message: string) => void): SlotHolder<WebSocket> | null {
  if (msg.job !== o.job) {
    o.log(`aggregator: refused ${msg.id} from ${peer}: job ${msg.job} is not ${o.job}`);
    refuse('FEDSLICE_ERR_JOB', `this aggregator serves job ${o.job}, not ${msg.job}`);
    return null;
  }
  try {
    const { holder, replaced, rejoined } = o.registry.join(msg.id, conn, msg.shard);
    if (replaced && replaced !== conn) replaced.close(1000, 'replaced by a new connection');
    o.outbox.send(conn, { type: 'joined', job: o.job, id: holder.id, shard: holder.slot, worldSize: o.registry.worldSize });
    o.log(`aggregator: trainer ${holder.id} ${rejoined ? 'rejoined' : 'joined'} as slot ${holder.slot} (${o.registry.connected().length}/${o.registry.worldSize})`);
    o.loop.onJoin(holder);
    return holder;
  } catch (e) {
    if (!isFedsliceError(e)) throw e;
    o.log(`aggregator: refused ${msg.id}: ${e.message}`);
    refuse(e.code, e.message);
    return null;
  }
}
