/**
 * TLS in one place for every role: servers load a cert/key pair and listen for wss:// (answering
 * a plain ws:// client with a clear refusal instead of a reset), clients load the CA they trust,
 * and connection failures that are about TLS become one line saying what to change.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FedsliceError } from '../errors.ts';

export const TLS_CA_ENV = 'FEDSLICE_TLS_CA';

export interface ServerTlsFiles {
  tlsCert?: string;
  tlsKey?: string;
}

export interface ServerTls {
  cert: Buffer;
  key: Buffer;
}

export interface ClientTlsFiles {
  tlsCa?: string;
  tlsInsecure?: boolean;
}

/** Options handed to `new WebSocket(url, ...)` (they reach tls.connect for wss:// URLs). */
export interface ClientTls {
  ca?: Buffer;
  rejectUnauthorized?: boolean;
}

const tlsError = (message: string) => new FedsliceError('FEDSLICE_ERR_TLS', message);

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw tlsError(`cannot read ${flag} ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path (\`fedslice certs --out DIR\` makes a pair)`);
  }
}

/** --tls-cert/--tls-key: both or neither; the files must be PEM and the key must match the cert. */
export function loadServerTls(o: ServerTlsFiles): ServerTls | undefined {
  if (!o.tlsCert && !o.tlsKey) return undefined;
  if (!o.tlsCert || !o.tlsKey) throw tlsError(`--tls-cert and --tls-key go together; pass both (missing ${o.tlsCert ? '--tls-key' : '--tls-cert'})`);
  const cert = readPem('--tls-cert', o.tlsCert);
  const key = readPem('--tls-key', o.tlsKey);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw tlsError(`--tls-cert ${o.tlsCert} is not a PEM certificate`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw tlsError(`--tls-key ${o.tlsKey} is not an unencrypted PEM private key`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw tlsError(`--tls-key ${o.tlsKey} does not match the certificate --tls-cert ${o.tlsCert}; pass the key made with that certificate`);
  return { cert, key };
}

/** --tls-ca (else $FEDSLICE_TLS_CA) and --tls-insecure, for roles that connect to wss:// URLs. */
export function loadClientTls(o: ClientTlsFiles): ClientTls {
  const caPath = o.tlsCa ?? (process.env[TLS_CA_ENV]?.trim() || undefined);
  const ca = caPath ? readPem(o.tlsCa ? '--tls-ca' : `$${TLS_CA_ENV}`, caPath) : undefined;
  if (ca) {
    try {
      new X509Certificate(ca);
    } catch {
      throw tlsError(`${o.tlsCa ? '--tls-ca' : `$${TLS_CA_ENV}`} ${caPath} is not a PEM certificate`);
    }
  }
  return { ...(ca ? { ca } : {}), ...(o.tlsInsecure ? { rejectUnauthorized: false } : {}) };
}

/** The first byte of a TLS connection is a handshake record. */
const TLS_HANDSHAKE = 0x16;

export const plainToTlsMessage = (url: string) => `the server at ${url} speaks TLS: use wss://`;

/** Where a server hands each accepted TCP connection first (the admission gate). */
export interface ConnectionGate {
  /** false: the connection was refused (and destroyed). */
  accept(socket: Socket): boolean;
  /** The TLS socket made over an accepted TCP socket. */
  alias(wrapped: TLSSocket, socket: Socket): void;
}

/**
 * An HTTP server ready to carry WebSocket upgrades, plain or behind TLS. With TLS it sits behind a
 * TCP listener that looks at the first byte: a TLS handshake is wrapped in a TLS socket and handed
 * to the HTTP server, anything else (a ws:// client) gets a 400 whose body says to use wss://.
 * Every accepted connection goes through `gate` first.
 */
export async function listenHttp(host: string, port: number, tls?: ServerTls, gate?: ConnectionGate): Promise<{ server: HttpServer; port: number; scheme: 'ws' | 'wss'; close: () => Promise<void> }> {
  const server = createHttpServer();
  if (!tls) {
    if (gate) server.on('connection', (socket: Socket) => gate.accept(socket));
    await listen(server, host, port);
    return { server, port: portOf(server), scheme: 'ws', close: () => closeHttp(server) };
  }
  const secureContext = createSecureContext({ cert: tls.cert, key: tls.key });
  const front: NetServer = createNetServer((socket) => {
    socket.on('error', () => socket.destroy());
    if (gate && !gate.accept(socket)) return;
    socket.once('data', (chunk) => {
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE) {
        const secure = new TLSSocket(socket, { isServer: true, secureContext });
        secure.on('error', () => secure.destroy());
        gate?.alias(secure, socket);
        server.emit('connection', secure);
        return;
      }
      const body = `${plainToTlsMessage(`${host}:${portOf(front)}`)}\n`;
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nX-Fedslice-Tls: required\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  });
  await listen(front, host, port);
  return {
    server,
    port: portOf(front),
    scheme: 'wss',
    close: async () => {
      await Promise.all([closeServer(front), closeHttp(server)]);
    },
  };
}

function listen(server: NetServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The port a listening server got (the OS picks it for port 0). */
function portOf(server: NetServer): number {
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('the server is not listening on a TCP port');
  return a.port;
}

function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Closes an HTTP server that may hold upgraded sockets the caller has already ended. */
function closeHttp(server: HttpServer): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A bind address on every interface: clients must be told another name for this machine. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** `ws://host:port` / `wss://host:port`, with brackets around an IPv6 literal. */
export function wsUrl(scheme: 'ws' | 'wss', host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * A connection error that no retry will fix (TLS on one side only, an untrusted or misnamed
 * certificate) as one line saying what to do; undefined for everything else.
 */
export function tlsConnectError(url: string, e: Error): FedsliceError | undefined {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const host = hostOf(url);
  if (VERIFY_CODES.has(code)) {
    return tlsError(`cannot verify the TLS certificate of ${host} (${code}); pass --tls-ca with the CA that signed it (ca.pem from \`fedslice certs\`) or set $${TLS_CA_ENV}`);
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return tlsError(`the TLS certificate of ${host} is not made out for "${host}" (${e.message}); make one with \`fedslice certs --hosts ${host},...\` or connect by a name it lists`);
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return tlsError(`the TLS certificate of ${host} is not valid now (${code}); make a new one with \`fedslice certs\``);
  }
  if (url.startsWith('wss:') && (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || /wrong version number|packet length too long/i.test(e.message))) {
    return tlsError(`the server at ${url} does not speak TLS: use ws://, or start it with --tls-cert and --tls-key`);
  }
  return undefined;
}

/** The refusal a TLS endpoint sends a plain ws:// client, recognised from the HTTP response. */
export function isPlainToTlsRefusal(res: { statusCode?: number; headers: Record<string, unknown> }): boolean {
  return res.statusCode === 400 && res.headers['x-fedslice-tls'] === 'required';
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
