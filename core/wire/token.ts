/** Job tokens: a shared secret every role must present to join a job. */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { FedsliceError } from '../errors.ts';

export const TOKEN_ENV = 'FEDSLICE_TOKEN';

export interface ResolvedToken {
  token: string;
  source: 'file' | 'env' | 'generated';
}

export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FedsliceError('FEDSLICE_ERR_TOKEN', `cannot read --token-file ${path}: ${(e as NodeJS.ErrnoException).code ?? e}; check the path`);
  }
  const token = text.trim();
  if (!token) throw new FedsliceError('FEDSLICE_ERR_TOKEN', `--token-file ${path} is empty; put the job token on its first line`);
  return token;
}

/** --token-file, then $FEDSLICE_TOKEN, then (when allowed) a fresh random token. */
export function resolveToken(opts: { tokenFile?: string; allowGenerate: boolean }): ResolvedToken {
  if (opts.tokenFile) return { token: readTokenFile(opts.tokenFile), source: 'file' };
  const env = process.env[TOKEN_ENV]?.trim();
  if (env) return { token: env, source: 'env' };
  if (!opts.allowGenerate) {
    throw new FedsliceError(
      'FEDSLICE_ERR_TOKEN',
      `no job token: set ${TOKEN_ENV} or pass --token-file (the aggregator prints the token it made when none was given)`,
    );
  }
  return { token: randomBytes(16).toString('hex'), source: 'generated' };
}

export function tokensEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * The token travels in the WebSocket upgrade request, so a server refuses a stranger (HTTP 401)
 * before reading a single frame. The job rides along for the metaserver, which serves many jobs.
 */
export const JOB_HEADER = 'x-fedslice-job';

/** Headers a client puts on its upgrade request. */
export function credentialHeaders(job: string, token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}`, 'X-Fedslice-Job': encodeURIComponent(job) };
}

/** The job and token an upgrade request carries (undefined where absent or malformed). */
export function upgradeCredentials(headers: IncomingHttpHeaders): { job?: string; token?: string } {
  const auth = headers.authorization;
  const token = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length).trim() || undefined : undefined;
  let job: string | undefined;
  const raw = headers[JOB_HEADER];
  if (typeof raw === 'string' && raw) {
    try {
      job = decodeURIComponent(raw);
    } catch {
      job = undefined;
    }
  }
  return { ...(job ? { job } : {}), ...(token ? { token } : {}) };
}

/** What a client refused with HTTP 401 tells its user: the token is wrong, and where it comes from. */
export function wrongTokenMessage(job: string): string {
  return `wrong token for job ${job}; give every role of the job the same token (${TOKEN_ENV} or --token-file)`;
}
