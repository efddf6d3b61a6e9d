/**
 * `fedslice dashboard`'s HTTP server: read-only, over one results store. It serves the page files
 * and the overview, a run's detail, and a stream of overviews (Server-Sent Events) that carries
 * each change of the store to the open pages. Nothing else: a request names a route, never a path.
 */
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FedsliceError } from '../core/errors.ts';
import { hostname } from 'node:os';
import { isWildcardHost } from '../core/wire/tls.ts';
import { checkAccess, dashboardToken, tokenCookie } from './access.ts';
import { assetTable } from './assets.ts';
import { OverviewFeed } from './feed.ts';
import { runDetail } from './run-detail.ts';

export interface DashboardOptions {
  results: string;
  host: string;
  /** 0: the OS picks a free port. */
  port: number;
  /** Required from visitors; made up when the host is not loopback and none is given. */
  token?: string;
}

export interface Dashboard {
  /** The address to open, with the token when one is needed. */
  url: string;
  port: number;
  feed: OverviewFeed;
  close(): Promise<void>;
}

/** Browsers keep an idle event stream open through proxies when it says something now and then. */
const KEEPALIVE_MS = 15_000;

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // vega compiles its expressions with Function: 'unsafe-eval'; vega-embed adds a style element
  'content-security-policy': "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
};

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const token = dashboardToken(o.host, o.token);
  const feed = new OverviewFeed(o.results);
  const assets = assetTable();
  const streams = new Set<ServerResponse>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/')) return text(res, 400, 'bad request');
    const url = new URL(`http://dashboard${req.url}`);
    const access = checkAccess(req, url, o.host, token);
    if (!access.ok) return text(res, access.status, access.message);
    if (access.setCookie && token) res.setHeader('set-cookie', tokenCookie(token));
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'the dashboard is read-only');
    const asset = assets.get(url.pathname);
    if (asset) return file(res, asset.file, asset.type);
    switch (url.pathname) {
      case '/api/overview':
        return json(res, feed.json);
      case '/api/run': {
        const detail = runDetail(feed.live, url.searchParams.get('id') ?? '');
        return detail ? json(res, JSON.stringify(detail)) : text(res, 404, 'no such run in this results store');
      }
      case '/api/events':
        return stream(req, res);
      case '/favicon.ico':
        res.writeHead(204).end();
        return;
      default:
        return text(res, 404, 'not found');
    }
  };

  const stream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    const send = (data: string) => res.write(`event: overview\ndata: ${data}\n\n`);
    res.write('retry: 1000\n\n');
    send(feed.json);
    const unsubscribe = feed.subscribe(send);
    const keepalive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
    streams.add(res);
    req.on('close', () => {
      clearInterval(keepalive);
      unsubscribe();
      streams.delete(res);
    });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new FedsliceError('FEDSLICE_ERR_LISTEN', `the dashboard cannot listen on ${o.host}:${o.port} (${e.code ?? e.message}); pick another --port or stop what holds it`)),
    );
    server.listen(o.port, o.host, () => resolve());
  });
  feed.start();
  const port = (server.address() as AddressInfo).port;
  const host = isWildcardHost(o.host) ? hostname() : o.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/${token ? `?token=${token}` : ''}`,
    port,
    feed,
    close: async () => {
      feed.stop();
      for (const s of streams) s.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function text(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${message}\n`);
}

function json(res: ServerResponse, body: string): void {
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

function file(res: ServerResponse, path: string, type: string): void {
  const s = createReadStream(path);
  s.on('open', () => {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-cache' });
    s.pipe(res);
  });
  s.on('error', () => {
    if (!res.headersSent) text(res, 500, 'a file of the dashboard is missing: reinstall fedslice');
    else res.destroy();
  });
}
