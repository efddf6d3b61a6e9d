/**
 * The metaserver: a rendezvous that knows, per job, where the aggregator listens and which
 * trainers are present, pushes joins and leaves, forwards the aggregator's status to observers,
 * and drops peers that stop answering pings (several in a row: heartbeat.ts). It never carries
 * model bytes, and never crashes on a peer's bad frame: the peer gets an error and, for anything
 * before hello, is closed.
 *
 * Every connection names its job and token on the upgrade request. The first connection of a job
 * that says hello fixes the job's token; later upgrades with another token get HTTP 401 before any
 * frame is read (and a hello that lost a race to another token is refused with an error).
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { decode } from '../core/wire/codec.ts';
import { toMetaserver, type Peer, type StatusMessage } from '../core/wire/schema.ts';
import { frameBytes, sendFromMetaserver } from '../core/wire/socket.ts';
import type { ErrorCode } from '../core/errors.ts';
import { tokensEqual, upgradeCredentials } from '../core/wire/token.ts';
import { wsUrl, type ServerTls } from '../core/wire/tls.ts';
import type { AdmissionLimits } from '../core/wire/admission.ts';
import { listenWebSocket, type UpgradeRefusal } from '../core/wire/ws-server.ts';
import { DEFAULT_MAX_MISSED_PONGS, DEFAULT_PING_INTERVAL_MS, Heartbeat } from './heartbeat.ts';

/** The metaserver only carries small coordination messages. */
export const METASERVER_MAX_PAYLOAD = 64 * 1024;

interface Member {
  jobId: string;
  peer: Peer;
  conn: WebSocket;
}

interface Job {
  tokenHash: string;
  members: Map<string, Member>; // by peer id
}

export interface MetaserverOptions {
  host?: string;
  port?: number;
  pingIntervalMs?: number;
  /** Pings in a row a peer may leave unanswered before it is dropped. */
  maxMissedPongs?: number;
  /** Cert and key: listen for wss:// instead of ws://. */
  tls?: ServerTls;
  /** Bounds on connections that have not said hello yet (defaults: DEFAULT_ADMISSION). */
  admission?: Partial<AdmissionLimits>;
  log?: (line: string) => void;
}

export interface MetaserverEvents {
  joined: [{ job: string; peer: Peer }];
  left: [{ job: string; peer: Peer; reason: 'closed' | 'timeout' }];
  status: [StatusMessage];
}

export interface Metaserver extends EventEmitter<MetaserverEvents> {
  url: string;
  port: number;
  /** Jobs and their members, for inspection. */
  jobs(): Map<string, Peer[]>;
  close(): Promise<void>;
}

const hashToken = (t: string) => createHash('sha256').update(t).digest('hex');

export async function startMetaserver(o: MetaserverOptions = {}): Promise<Metaserver> {
  const host = o.host ?? '127.0.0.1';
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const jobs = new Map<string, Job>();
  const events = new EventEmitter<MetaserverEvents>();
  const authorize = (req: IncomingMessage): UpgradeRefusal | null => {
    const { job, token } = upgradeCredentials(req.headers);
    if (!token) return { status: 401, reason: 'no job token (send it as "Authorization: Bearer TOKEN")' };
    if (!job) return { status: 400, reason: 'no job named (send it as "X-Fedslice-Job: JOB")' };
    const known = jobs.get(job);
    if (known && !tokensEqual(hashToken(token), known.tokenHash)) return { status: 401, reason: `job ${job}: wrong job token` };
    return null;
  };
  const server = await listenWebSocket({
    name: 'metaserver',
    host,
    port: o.port ?? 0,
    ...(o.tls ? { tls: o.tls } : {}),
    maxPayload: METASERVER_MAX_PAYLOAD,
    ...(o.admission ? { admission: o.admission } : {}),
    authorize,
    onConnection: (conn, req) => serve(conn, req),
    log,
  });

  const send = sendFromMetaserver;
  const refuse = (conn: WebSocket, code: ErrorCode, message: string) => {
    send(conn, { type: 'error', code, message });
    conn.close(1008, code);
  };
  const count = (job: Job, role: Peer['role']) => [...job.members.values()].filter((m) => m.peer.role === role).length;
  /** Who hears about `peer`: the other role, and every observer. */
  const audience = (job: Job, peer: Peer) =>
    peer.role === 'observer' ? [] : [...job.members.values()].filter((m) => m.peer.id !== peer.id && (m.peer.role === 'observer' || m.peer.role !== peer.role));

  const removeMember = (jobId: string, member: Member, reason: 'closed' | 'timeout') => {
    const job = jobs.get(jobId);
    if (!job || job.members.get(member.peer.id) !== member) return;
    job.members.delete(member.peer.id);
    heartbeat.forget(member);
    for (const m of audience(job, member.peer)) send(m.conn, { type: 'peer-left', job: jobId, peer: member.peer, reason });
    log(`metaserver: job ${jobId}: ${member.peer.role} ${member.peer.id} left (${reason}; ${count(job, 'trainer')} trainers)`);
    events.emit('left', { job: jobId, peer: member.peer, reason });
    if (job.members.size === 0) jobs.delete(jobId);
  };

  function serve(conn: WebSocket, req: IncomingMessage) {
    const from = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    // authorize() let this upgrade through only with both.
    const credentials = upgradeCredentials(req.headers);
    let member: Member | null = null;
    let jobId = '';

    conn.on('pong', () => {
      if (member) heartbeat.answered(member);
    });
    conn.on('message', (data, isBinary) => {
      const d = isBinary ? decode(toMetaserver, frameBytes(data)) : ({ ok: false, code: 'FEDSLICE_ERR_FRAME', error: 'text frame; send binary msgpack frames' } as const);
      if (!d.ok) {
        log(`metaserver: bad frame from ${member?.peer.id ?? from}: ${d.error}`);
        if (member) send(conn, { type: 'error', code: d.code, message: d.error });
        else refuse(conn, d.code, d.error);
        return;
      }
      const msg = d.msg;
      if (!member) {
        if (msg.type !== 'hello') {
          refuse(conn, 'FEDSLICE_ERR_HELLO', `expected hello first, got ${msg.type}`);
          return;
        }
        if (msg.job !== credentials.job) {
          refuse(conn, 'FEDSLICE_ERR_HELLO', `hello for job ${msg.job} on a connection opened for job ${credentials.job}`);
          return;
        }
        const token = credentials.token ?? '';
        let job = jobs.get(msg.job);
        if (job && !tokensEqual(hashToken(token), job.tokenHash)) {
          log(`metaserver: job ${msg.job}: refused ${msg.role} ${msg.id} from ${from}: wrong job token`);
          refuse(conn, 'FEDSLICE_ERR_TOKEN', `wrong token for job ${msg.job}`);
          return;
        }
        if (msg.role === 'aggregator' && !msg.address) {
          refuse(conn, 'FEDSLICE_ERR_HELLO', 'an aggregator must give the address of its server');
          return;
        }
        const previous = job?.members.get(msg.id);
        if (job && msg.role === 'aggregator') {
          const other = [...job.members.values()].find((m) => m.peer.role === 'aggregator' && m.peer.id !== msg.id);
          if (other) {
            log(`metaserver: job ${msg.job}: refused a second aggregator ${msg.id}`);
            refuse(conn, 'FEDSLICE_ERR_AGGREGATOR', `job ${msg.job} already has an aggregator (${other.peer.id})`);
            return;
          }
        }
        if (!job) {
          job = { tokenHash: hashToken(token), members: new Map() };
          jobs.set(msg.job, job);
        }
        jobId = msg.job;
        const peer: Peer = { id: msg.id, role: msg.role, ...(msg.address ? { address: msg.address } : {}) };
        if (previous) {
          job.members.delete(msg.id); // a reconnect replaces the old connection silently
          previous.conn.close(1000, 'replaced by a new connection');
        }
        member = { jobId, peer, conn };
        job.members.set(peer.id, member);
        server.admit(req);
        const visible = [...job.members.values()]
          .filter((m) => m.peer.id !== peer.id && (peer.role === 'observer' || m.peer.role !== peer.role) && m.peer.role !== 'observer')
          .map((m) => m.peer);
        send(conn, { type: 'welcome', job: jobId, peers: visible });
        for (const m of audience(job, peer)) send(m.conn, { type: 'peer-joined', job: jobId, peer });
        log(`metaserver: job ${jobId}: ${peer.role} ${peer.id} joined from ${req.socket.remoteAddress}${peer.address ? `, serving at ${peer.address}` : ''} (${count(job, 'trainer')} trainers)`);
        events.emit('joined', { job: jobId, peer });
        return;
      }
      if (msg.type === 'status' && member.peer.role === 'aggregator' && msg.job === jobId) {
        const job = jobs.get(jobId);
        for (const m of job ? job.members.values() : []) if (m.peer.role === 'observer') send(m.conn, msg);
        events.emit('status', msg);
        return;
      }
      log(`metaserver: job ${jobId}: dropped an unexpected ${msg.type} from ${member.peer.id}`);
      send(conn, { type: 'error', code: 'FEDSLICE_ERR_UNEXPECTED', message: `unexpected ${msg.type} message` });
    });
    conn.on('close', () => {
      if (member) removeMember(jobId, member, 'closed');
    });
    conn.on('error', (e) => log(`metaserver: connection ${member?.peer.id ?? from}: ${e.message}`));
  }

  const heartbeat = new Heartbeat<Member>({
    intervalMs: o.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
    maxMissed: o.maxMissedPongs ?? DEFAULT_MAX_MISSED_PONGS,
    members: () => [...jobs.values()].flatMap((job) => [...job.members.values()]),
    ping: (m) => m.conn.ping(),
    drop: (m) => {
      removeMember(m.jobId, m, 'timeout');
      m.conn.terminate();
    },
  });

  return Object.assign(events, {
    url: wsUrl(server.scheme, host, server.port),
    port: server.port,
    jobs: () => new Map([...jobs].map(([id, j]) => [id, [...j.members.values()].map((m) => m.peer)])),
    close: () => {
      heartbeat.stop();
      return server.close();
    },
  });
}
