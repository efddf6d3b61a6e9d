// wss:// end to end: certificates made by `fedslice certs`, a metaserver and an aggregator serving
// TLS on loopback, trainers refused for each thing they get wrong, then one that gets it right.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/results/types.ts';
import { loadClientTls, loadServerTls } from '../core/wire/tls.ts';
import { makeCerts } from '../certs/make.ts';
import { startMetaserver } from '../metaserver/server.ts';
import { connectMetaserver } from '../metaserver/client.ts';
import { jsonl, startRole, stopAll, tempDir, type Role } from './helpers/roles.ts';
import { makeTestData, writeConfig } from './helpers/experiment.ts';

const TOKEN = 'tls-test-token';
let dir: string;
let certs: string;
let cfg: string;
let results: string;
let metaUrl: string;
let aggregator: Role;

const ca = () => join(certs, 'ca.pem');
const cert = () => join(certs, 'server.pem');
const key = () => join(certs, 'server-key.pem');

/** A trainer for the job that should be refused: exit code and the error line. */
async function refusedTrainer(id: string, args: string[], env: Record<string, string>) {
  const t = startRole(id, ['trainer', '--config', cfg, '--id', id, ...args], env);
  const { code } = await t.exited;
  return { code, error: t.output().match(/^fedslice: error: .*$/m)?.[0] ?? t.output() };
}

beforeAll(async () => {
  dir = tempDir('fedslice-tls-');
  certs = join(dir, 'certs');
  const made = startRole('certs', ['certs', '--out', certs, '--hosts', 'localhost,127.0.0.1', '--days', '2']);
  expect((await made.exited).code).toBe(0);
  const dataDir = makeTestData(dir);
  cfg = writeConfig(dir, 'tls.json', { dataDir, name: 'tls', worldSize: 1, rounds: 1, steps: 3 });
  results = join(dir, 'results');
  const meta = startRole('metaserver', ['metaserver', '--port', '0', '--tls-cert', cert(), '--tls-key', key()]);
  const [, port] = await meta.waitFor(/listening on wss:\/\/127\.0\.0\.1:(\d+)/);
  metaUrl = `wss://localhost:${port}`;
  aggregator = startRole(
    'aggregator',
    ['aggregator', '--config', cfg, '--metaserver', metaUrl, '--results', results, '--tls-cert', cert(), '--tls-key', key(), '--tls-ca', ca(), '--advertise', 'localhost'],
    { FEDSLICE_TOKEN: TOKEN },
  );
  await aggregator.waitFor(/listening for trainers on wss:\/\/localhost:\d+/);
});
afterAll(() => stopAll());

describe('fedslice certs', () => {
  it('writes a CA and a server pair whose keys only the owner can read', () => {
    for (const f of ['ca-key.pem', 'server-key.pem']) expect(statSync(join(certs, f)).mode & 0o777).toBe(0o600);
    expect(loadServerTls({ tlsCert: cert(), tlsKey: key() })?.cert.length).toBeGreaterThan(0);
    expect(loadClientTls({ tlsCa: ca() }).ca?.length).toBeGreaterThan(0);
  });

  it('says so when openssl is missing', () => {
    expect(() => makeCerts({ out: join(dir, 'no-openssl'), hosts: ['localhost'], days: 1, force: false, openssl: join(dir, 'no-such-openssl') })).toThrow(
      /no-such-openssl` was not found; install OpenSSL/,
    );
  });

  it('refuses to overwrite without --force', async () => {
    const again = startRole('certs again', ['certs', '--out', certs]);
    expect((await again.exited).code).toBe(1);
    expect(again.output()).toMatch(/fedslice: error: .*already exist; pass --force/);
  });
});

describe('server TLS options', () => {
  it('a key that does not belong to the certificate stops the metaserver with one line', async () => {
    const m = startRole('mismatched', ['metaserver', '--port', '0', '--tls-cert', cert(), '--tls-key', join(certs, 'ca-key.pem')]);
    expect((await m.exited).code).toBe(1);
    expect(m.output()).toMatch(/fedslice: error: --tls-key .*ca-key\.pem does not match the certificate --tls-cert .*server\.pem/);
  });

  it('a wss:// client against a plain ws:// server is told the server does not speak TLS', async () => {
    const plain = await startMetaserver({ port: 0, log: () => {} });
    try {
      const url = plain.url.replace('ws:', 'wss:');
      await expect(connectMetaserver({ url, job: 'j', role: 'trainer', id: 't', token: 'x', tls: loadClientTls({ tlsCa: ca() }) })).rejects.toThrow(
        `the server at ${url} does not speak TLS: use ws://, or start it with --tls-cert and --tls-key`,
      );
    } finally {
      await plain.close();
    }
  });

  it('missing files and half a pair are named', () => {
    expect(() => loadServerTls({ tlsCert: join(dir, 'nope.pem'), tlsKey: key() })).toThrow(/cannot read --tls-cert .*nope\.pem \(ENOENT\)/);
    expect(() => loadServerTls({ tlsCert: cert() })).toThrow(/--tls-cert and --tls-key go together.*missing --tls-key/);
    expect(() => loadClientTls({ tlsCa: cfg })).toThrow(/--tls-ca .*tls\.json is not a PEM certificate/);
  });
});

describe('trainers over wss://', () => {
  it('without the job token: refused, the run goes on', async () => {
    const r = await refusedTrainer('no-token', ['--metaserver', metaUrl, '--tls-ca', ca()], { FEDSLICE_TOKEN: '' });
    expect(r.code).toBe(1);
    expect(r.error).toMatch(/no job token: set FEDSLICE_TOKEN or pass --token-file/);
  });

  it('with a wrong token: refused by the metaserver', async () => {
    const r = await refusedTrainer('wrong-token', ['--metaserver', metaUrl, '--tls-ca', ca()], { FEDSLICE_TOKEN: 'not-the-token' });
    expect(r.code).toBe(1);
    expect(r.error).toMatch(/refused trainer wrong-token for job tls: wrong token for job tls/);
  });

  it('with ws:// to the TLS endpoint: told to use wss://', async () => {
    const r = await refusedTrainer('plain', ['--metaserver', metaUrl.replace('wss:', 'ws:'), '--tls-ca', ca()], { FEDSLICE_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    expect(r.error).toBe(`fedslice: error: the server at ${metaUrl.replace('wss:', 'ws:')} speaks TLS: use wss://`);
  });

  it('without the CA: the certificate cannot be verified, and the line says --tls-ca', async () => {
    const r = await refusedTrainer('no-ca', ['--metaserver', metaUrl], { FEDSLICE_TOKEN: TOKEN, FEDSLICE_TLS_CA: '' });
    expect(r.code).toBe(1);
    expect(r.error).toMatch(/cannot verify the TLS certificate of localhost \(\w+\); pass --tls-ca/);
  });

  it('with the token and the CA: joins the aggregator over wss:// and the run completes', async () => {
    const t = startRole('trainer', ['trainer', '--config', cfg, '--id', 'good', '--metaserver', metaUrl], { FEDSLICE_TOKEN: TOKEN, FEDSLICE_TLS_CA: ca() });
    const [trainerExit, aggExit] = await Promise.all([t.exited, aggregator.exited]);
    expect(trainerExit.code).toBe(0);
    expect(aggExit.code).toBe(0);
    expect(t.output()).toMatch(/joined job tls as shard 0 of 1/);
    expect(aggregator.output()).not.toMatch(/trainer (no-token|wrong-token|plain|no-ca) joined/);
    expect(jsonl<RunRecord>(join(results, 'runs.jsonl')).map((r) => r.status)).toEqual(['started', 'completed']);
  });
});
