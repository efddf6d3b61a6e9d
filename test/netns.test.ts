// A trainer on "another host": a network namespace joined to this one by a veth pair, so it has
// its own interfaces and loopback and reaches the metaserver and aggregator only at the host-side
// address, over wss:// with the job token. Needs root and `ip netns`; skipped with a note otherwise.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../core/results/types.ts';
import { jsonl, startRole, stopAll, tempDir } from './helpers/roles.ts';
import { makeTestData, writeConfig } from './helpers/experiment.ts';

const ns = `fsl${process.pid}`;
const hostIf = `fslh${process.pid}`.slice(0, 15);
const nsIf = `fsln${process.pid}`.slice(0, 15);
// A /30 of its own per test process, out of the way of usual LAN ranges.
const net = `10.${200 + (process.pid % 50)}.${(process.pid >> 6) % 250}`;
const hostIp = `${net}.1`;
const nsIp = `${net}.2`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const inNs = (...args: string[]) => ip('netns', 'exec', ns, 'ip', ...args);

/** Why the namespace cannot be made here, or null when it can. */
function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    ip('netns', 'list');
    return null;
  } catch (e) {
    return `\`ip netns\` failed (${(e as Error).message.split('\n')[0]})`;
  }
}

const skip = unavailable();
if (skip) console.warn(`netns.test.ts skipped: ${skip}; run as root with iproute2 installed to test a trainer in another network namespace`);

function teardown() {
  for (const args of [['netns', 'delete', ns], ['link', 'delete', hostIf]]) {
    try {
      ip(...args);
    } catch {
      // already gone (deleting the namespace removes the pair)
    }
  }
}

describe.skipIf(skip)('a trainer in another network namespace', () => {
  let dir: string;
  let cfg: string;
  let certs: string;

  beforeAll(async () => {
    teardown();
    ip('netns', 'add', ns);
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    ip('link', 'set', nsIf, 'netns', ns);
    ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    inNs('addr', 'add', `${nsIp}/30`, 'dev', nsIf);
    inNs('link', 'set', nsIf, 'up');
    inNs('link', 'set', 'lo', 'up');

    dir = tempDir('fedslice-netns-');
    certs = join(dir, 'certs');
    const made = startRole('certs', ['certs', '--out', certs, '--hosts', `${hostIp},localhost`, '--days', '2']);
    expect((await made.exited).code).toBe(0);
    cfg = writeConfig(dir, 'netns.json', { dataDir: makeTestData(dir), name: 'netns', worldSize: 1, rounds: 1, steps: 3 });
  });
  afterAll(async () => {
    await stopAll();
    teardown();
  });

  it('joins over wss:// at the host-side address with the token; plain ws:// is refused; the run completes', async () => {
    const tls = ['--tls-cert', join(certs, 'server.pem'), '--tls-key', join(certs, 'server-key.pem')];
    const ca = join(certs, 'ca.pem');
    const env = { FEDSLICE_TOKEN: 'netns-token' };
    const meta = startRole('metaserver', ['metaserver', '--host', hostIp, '--port', '0', ...tls]);
    const [, port] = await meta.waitFor(/listening on wss:\/\/[\d.]+:(\d+)/);
    const metaUrl = `wss://${hostIp}:${port}`;
    const results = join(dir, 'results');
    const agg = startRole('aggregator', ['aggregator', '--config', cfg, '--metaserver', metaUrl, '--results', results, '--host', '0.0.0.0', '--advertise', hostIp, ...tls, '--tls-ca', ca], env);
    await agg.waitFor(new RegExp(`listening for trainers on wss://${hostIp.replaceAll('.', '\\.')}:\\d+`));

    const inside = ['ip', 'netns', 'exec', ns];
    const plain = startRole('plain trainer', ['trainer', '--config', cfg, '--id', 'plain', '--metaserver', metaUrl.replace('wss:', 'ws:'), '--tls-ca', ca], env, inside);
    expect((await plain.exited).code).toBe(1);
    expect(plain.output()).toMatch(/fedslice: error: the server at ws:\/\/[\d.:]+ speaks TLS: use wss:\/\//);

    const trainer = startRole('trainer', ['trainer', '--config', cfg, '--id', 'remote', '--metaserver', metaUrl, '--tls-ca', ca], env, inside);
    const [t, a] = await Promise.all([trainer.exited, agg.exited]);
    expect(t.code).toBe(0);
    expect(a.code).toBe(0);
    // The trainer arrived from the namespace's address, not from loopback.
    expect(meta.output()).toContain(`trainer remote joined from ${nsIp} (`);
    expect(trainer.output()).toMatch(/joined job netns as shard 0 of 1/);
    expect(jsonl<RunRecord>(join(results, 'runs.jsonl')).map((r) => r.status)).toEqual(['started', 'completed']);
  });
});
