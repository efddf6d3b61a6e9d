/**
 * The aggregator's own WebSocket server: trainers connect here directly (model bytes never pass
 * through the metaserver). It checks the job token on join, gives each trainer its slot, and
 * hands joins, departures and updates to the round loop; a malformed frame or a refused update is
 * answered with an error and dropped.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { decode } from '../core/wire/codec.ts';
import { trainerToAggregator, type MessageOf } from '../core/wire/schema.ts';
import { frameBytes } from '../core/wire/socket.ts';
import { tokensEqual } from '../core/wire/token.ts';
import { listenHttp, wsUrl, type ServerTls } from '../core/wire/tls.ts';
import { isFedsliceError, type ErrorCode } from '../core/errors.ts';
import type { SlotHolder, TrainerRegistry } from './registry.ts';
import type { FederationLoop } from './federation-loop.ts';
import type { SocketOutbox } from './outbox.ts';

/** How long a new connection may take to say who it is. */
const JOIN_DEADLINE_MS = 10_000;
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
  registry: TrainerRegistry<WebSocket>;
  loop: Pick<FederationLoop<WebSocket>, 'onJoin' | 'onLeave' | 'onUpdate'>;
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

export async function startTrainerServer(o: TrainerServerOptions): Promise<TrainerServer> {
  const http = await listenHttp(o.host, o.port, o.tls);
  const wss = new WebSocketServer({ server: http.server, maxPayload: o.maxPayload });
  wss.on('error', (e) => o.log(`aggregator: server error: ${e.message}`));
  wss.on('connection', (conn, req) => serveTrainer(o, conn, `${req.socket.remoteAddress}:${req.socket.remotePort}`));
  return {
    url: wsUrl(http.scheme, o.advertise ?? o.host, http.port),
    port: http.port,
    sendDone: (reason, message) => {
      for (const h of o.registry.connected()) if (h.conn) o.outbox.send(h.conn, { type: 'done', job: o.job, reason, ...(message ? { message } : {}) });
    },
    close: async () => {
      await o.outbox.flush(FLUSH_MS);
      await new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => void http.close().then(resolve));
      });
    },
  };
}

/** One trainer connection: a join first (within the deadline), then updates. */
function serveTrainer(o: TrainerServerOptions, conn: WebSocket, peer: string): void {
  let holder: SlotHolder<WebSocket> | null = null;
  const refuse = (code: ErrorCode, message: string) => {
    o.outbox.send(conn, { type: 'error', code, message });
    conn.close(1008, code);
  };
  const deadline = setTimeout(() => {
    if (!holder) refuse('FEDSLICE_ERR_JOIN', `no join message within ${JOIN_DEADLINE_MS / 1000}s`);
  }, JOIN_DEADLINE_MS);

  conn.on('message', (data, isBinary) => {
    const bytes = frameBytes(data);
    o.outbox.received(bytes.byteLength);
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
      if (holder) clearTimeout(deadline);
      return;
    }
    if (msg.type === 'steps') return acceptSteps(o, holder, msg);
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
    clearTimeout(deadline);
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

/** Checks a join (job, token, slot) and registers the trainer; null (after refusing) if it cannot join. */
function join(o: TrainerServerOptions, conn: WebSocket, msg: MessageOf<'join'>, peer: string, refuse: (code: ErrorCode, message: string) => void): SlotHolder<WebSocket> | null {
  if (msg.job !== o.job) {
    o.log(`aggregator: refused ${msg.id} from ${peer}: job ${msg.job} is not ${o.job}`);
    refuse('FEDSLICE_ERR_JOB', `this aggregator serves job ${o.job}, not ${msg.job}`);
    return null;
  }
  if (!tokensEqual(msg.token, o.token)) {
    o.log(`aggregator: refused ${msg.id} from ${peer}: wrong job token`);
    refuse('FEDSLICE_ERR_TOKEN', `wrong job token for job ${o.job}`);
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
