/**
 * Who may read the dashboard. Bound to a loopback address it answers only requests addressed to a
 * loopback name (a web page elsewhere cannot reach it through DNS rebinding); bound anywhere else
 * it needs the token: in the URL once (?token=..., which sets a same-site cookie for the page's
 * later requests), in that cookie, or as `Authorization: Bearer <token>`.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { tokensEqual } from '../core/wire/token.ts';

export const DASHBOARD_TOKEN_ENV = 'FEDSLICE_DASHBOARD_TOKEN';
export const TOKEN_COOKIE = 'fedslice_dashboard';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The token a dashboard bound to `host` asks for: given, from the environment, or made now; none on loopback unless given. */
export function dashboardToken(host: string, given?: string): string | null {
  const token = given?.trim() || process.env[DASHBOARD_TOKEN_ENV]?.trim();
  if (token) return token;
  return isLoopbackHost(host) ? null : randomBytes(16).toString('hex');
}

export type Verdict = { ok: true; setCookie: boolean } | { ok: false; status: 401 | 403; message: string };

export function checkAccess(req: IncomingMessage, url: URL, bindHost: string, token: string | null): Verdict {
  if (isLoopbackHost(bindHost) && !isLoopbackHost(hostnameOf(req.headers.host))) {
    return { ok: false, status: 403, message: 'this dashboard answers only on localhost; open it as http://127.0.0.1:<port>/' };
  }
  if (token === null) return { ok: true, setCookie: false };
  const fromQuery = url.searchParams.get('token');
  if (fromQuery !== null && tokensEqual(fromQuery, token)) return { ok: true, setCookie: true };
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  const cookie = cookieValue(req.headers.cookie, TOKEN_COOKIE);
  if ((bearer !== undefined && tokensEqual(bearer, token)) || (cookie !== null && tokensEqual(cookie, token))) return { ok: true, setCookie: false };
  return { ok: false, status: 401, message: 'this dashboard needs its token: open the URL it printed (with ?token=...)' };
}

export function tokenCookie(token: string): string {
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`;
}

function hostnameOf(hostHeader: string | undefined): string {
  if (!hostHeader) return '';
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  return hostHeader.split(':')[0];
}

function cookieValue(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) {
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return null;
      }
    }
  }
  return null;
}
