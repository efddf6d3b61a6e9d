/**
 * A role's connection to the metaserver: say hello, learn the peers, hear joins, leaves and
 * status, and wait for the job's aggregator by event (never by polling).
 */
import WebSocket from 'ws';
import { FedsliceError, type ErrorCode } from '../core/errors.ts';
import { decode } from '../core/wire/codec.ts';
import { fromMetaserver, type Peer, type Role, type RunState, type StatusMessage } from '../core/wire/schema.ts';
import { frameBytes, receiveFragments, sendToMetaserver } from '../core/wire/socket.ts';
import { isPlainToTlsRefusal, plainToTlsMessage, tlsConnectError, type ClientTls } from '../core/wire/tls.ts';
import { credentialHeaders, wrongTokenMessage } from '../core/wire/token.ts';
import { METASERVER_MAX_PAYLOAD } from './server.ts';

export interface MetaClientOptions {
  url: string;
  job: string;
  role: Role;
  id: string;
  token: string;
  address?: string;
  /** CA and verification for a wss:// metaserver. */
  tls?: ClientTls;
  onPeerJoined?: (p: Peer) => void;
  onPeerLeft?: (p: Peer, reason: 'closed' | 'timeout') => void;
  onStatus?: (s: StatusMessage) => void;
  /** The connection to the metaserver ended (it stopped, or dropped us). */
  onClose?: () => void;
}

export interface MetaClient {
  peers(): Peer[];
  sendStatus(s: { state: RunState; round: number; rounds: number; message?: string }): void;
  /** The aggregator's address as soon as one is registered for the job. */
  waitForAggregator(timeoutMs: number): Promise<string>;
  close(): void;
}

const CONNECT_TIMEOUT_MS = 10_000;

export function connectMetaserver(o: MetaClientOptions): Promise<MetaClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(o.url, { maxPayload: METASERVER_MAX_PAYLOAD, handshakeTimeout: CONNECT_TIMEOUT_MS, headers: credentialHeaders(o.job, o.token), ...o.tls });
    receiveFragments(ws);
    const peers = new Map<string, Peer>();
    const aggregatorWaiters = new Set<(address: string) => void>();
    let welcomed = false;
    let closing = false;

    const refused = (why: string) => `the metaserver at ${o.url} refused ${o.role} ${o.id} for job ${o.job}: ${why}`;
    const fail = (message: string, code: ErrorCode = 'FEDSLICE_ERR_METASERVER') => {
      if (!welcomed) reject(new FedsliceError(code, message));
      ws.terminate();
    };
    const aggregator = () => [...peers.values()].find((p) => p.role === 'aggregator' && p.address);
    const announceAggregator = () => {
      const a = aggregator();
      if (!a) return;
      for (const w of aggregatorWaiters) w(a.address!);
      aggregatorWaiters.clear();
    };

    ws.on('open', () => sendToMetaserver(ws, { type: 'hello', job: o.job, role: o.role, id: o.id, ...(o.address ? { address: o.address } : {}) }));
    ws.on('message', (data) => {
      const d = decode(fromMetaserver, frameBytes(data));
      if (!d.ok) return; // a bad frame from the metaserver is ignored, not fatal
      const msg = d.msg;
      switch (msg.type) {
        case 'welcome':
          for (const p of msg.peers) peers.set(p.id, p);
          welcomed = true;
          resolve(client);
          announceAggregator();
          return;
        case 'peer-joined':
          peers.set(msg.peer.id, msg.peer);
          o.onPeerJoined?.(msg.peer);
          announceAggregator();
          return;
        case 'peer-left':
          peers.delete(msg.peer.id);
          o.onPeerLeft?.(msg.peer, msg.reason);
          return;
        case 'status':
          o.onStatus?.(msg);
          return;
        case 'error':
          if (!welcomed) fail(refused(msg.code === 'FEDSLICE_ERR_TOKEN' ? wrongTokenMessage(o.job) : msg.message), msg.code);
          return;
        default:
          msg satisfies never;
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      if (isPlainToTlsRefusal(res)) fail(plainToTlsMessage(o.url), 'FEDSLICE_ERR_TLS');
      else if (res.statusCode === 401) fail(refused(wrongTokenMessage(o.job)), 'FEDSLICE_ERR_TOKEN');
      else fail(`the metaserver at ${o.url} answered HTTP ${res.statusCode} instead of a WebSocket upgrade; check --metaserver`);
    });
    ws.on('error', (e) => {
      const tls = tlsConnectError(o.url, e);
      if (tls) return fail(tls.message, tls.code);
      const code = (e as NodeJS.ErrnoException).code;
      fail(`cannot reach the metaserver at ${o.url} (${code ?? e.message}); start it with \`fedslice metaserver\` or pass --metaserver URL`);
    });
    ws.on('close', (code, reason) => {
      if (!welcomed) fail(`the metaserver at ${o.url} closed the connection (${code}${reason.length ? ` ${reason}` : ''})`);
      else if (!closing) o.onClose?.();
    });

    const client: MetaClient = {
      peers: () => [...peers.values()],
      sendStatus: (s) => {
        sendToMetaserver(ws, { type: 'status', job: o.job, ...s });
      },
      waitForAggregator: (timeoutMs) =>
        new Promise<string>((res, rej) => {
          const known = aggregator();
          if (known) return res(known.address!);
          const timer = setTimeout(() => {
            aggregatorWaiters.delete(done);
            rej(new FedsliceError('FEDSLICE_ERR_NO_AGGREGATOR', `no aggregator registered for job ${o.job} at ${o.url} within ${Math.round(timeoutMs / 1000)} s; start \`fedslice aggregator\` with the same --job`));
          }, timeoutMs);
          const done = (address: string) => {
            clearTimeout(timer);
            res(address);
          };
          aggregatorWaiters.add(done);
        }),
      close: () => {
        closing = true;
        ws.close();
      },
    };
  });
}
