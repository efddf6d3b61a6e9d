// The dashboard's server over a real results store on disk, through real HTTP: what it lists, the
// live stream (Server-Sent Events) while records are appended, torn and half-written lines, the
// token off loopback, and that it serves nothing but its own routes.
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { request, type IncomingMessage } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from 'vega-lite';
import { ResultsStore } from '../core/results/store.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { startDashboard, type Dashboard } from '../dashboard/server.ts';
import type { Overview } from '../dashboard/overview.ts';
import { writeFixtureStore } from './fixtures/make-results-store.ts';
import { tempDir } from './helpers/roles.ts';

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A GET with the path sent exactly as given (no normalising of ../ or %2e by a client library). */
function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The overviews the event stream pushes, as they come; `next(pred)` resolves with the first that matches. */
function openStream(port: number) {
  const seen: Overview[] = [];
  const waiters: { pred: (o: Overview) => boolean; resolve: (o: Overview) => void }[] = [];
  let close = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/events' }, (res) => {
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      let buf = '';
      res.on('data', (d) => {
        buf += d;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = /^data: (.*)$/m.exec(event)?.[1];
          if (!/^event: overview$/m.test(event) || data === undefined) continue;
          const o = JSON.parse(data) as Overview;
          seen.push(o);
          for (const w of [...waiters]) if (w.pred(o)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(o);
          }
        }
      });
      resolve();
    });
    req.on('error', reject);
    req.end();
    close = () => req.destroy();
  });
  const next = (pred: (o: Overview) => boolean, timeoutMs = 60_000) =>
    new Promise<Overview>((resolve, reject) => {
      const hit = seen.find(pred);
      if (hit) return resolve(hit);
      const timer = setTimeout(() => reject(new Error(`no such overview pushed in ${timeoutMs} ms; last: ${JSON.stringify(seen.at(-1)?.runs.slice(-2))}`)), timeoutMs);
      waiters.push({ pred, resolve: (o) => (clearTimeout(timer), resolve(o)) });
    });
  return { ready, next, seen, close: () => close() };
}

let dir: string;
let results: string;
let dash: Dashboard;
let port: number;

beforeAll(async () => {
  dir = tempDir('fedslice-dashboard-');
  results = join(dir, 'results');
  writeFixtureStore(results); // 18 runs, one failed; rounds.jsonl ends in a torn line
  dash = await startDashboard({ results, host: '127.0.0.1', port: 0 });
  port = dash.port;
});
afterAll(async () => {
  await dash?.close();
});

const runs = (): RunRecord[] => readFileSync(join(results, 'runs.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunRecord);

describe('dashboard server', () => {
  it('lists every run with its state, round r/R and last accuracy, and the analysis charts', async () => {
    const r = await get(port, '/api/overview');
    expect(r.status).toBe(200);
    const o = JSON.parse(r.body) as Overview;
    expect(o.runs).toHaveLength(18);
    expect(o.counts).toEqual({ running: 0, completed: 17, failed: 1, interrupted: 0 });
    const failed = o.runs.find((x) => x.state === 'failed')!;
    expect(failed.label).toBe('W=2 lr=1e-3 swap seed=77');
    expect(`${failed.round}/${failed.rounds}`).toBe('1/3');
    const first = o.runs.find((x) => x.label === 'W=1 lr=1e-4 no swap seed=123')!;
    expect(first).toMatchObject({ state: 'completed', activity: 'completed', round: 3, rounds: 3, testAccuracy: 0.6, eta: '-' });
    expect(o.charts.map((c) => c.name)).toEqual(['learning-curves', 'time-breakdown']);
    for (const c of o.charts) expect(() => compile(c.spec)).not.toThrow();
    // the page and the browser builds it loads come from the installed packages
    for (const path of ['/', '/run', '/assets/overview.js', '/assets/vega.min.js', '/assets/vega-lite.min.js', '/assets/vega-embed.min.js']) {
      expect((await get(port, path)).status, path).toBe(200);
    }
  });

  it('pushes each appended record to open pages; a torn or half-written line breaks nothing', async () => {
    const stream = openStream(port);
    await stream.ready;
    await stream.next(() => true);
    const store = new ResultsStore(results);
    const base = runs()[0];
    const runId = 'live-run-1';
    const started: RunRecord = { ...base, runId, status: 'started', startedAt: new Date().toISOString() };
    delete started.endedAt;
    store.appendRun(started);
    const running = await stream.next((o) => o.runs.some((x) => x.runId === runId));
    expect(running.runs.find((x) => x.runId === runId)).toMatchObject({ state: 'running', activity: 'starting', round: null });

    const round = (n: number): RoundRecord => ({ ...JSON.parse(readFileSync(join(results, 'rounds.jsonl'), 'utf8').split('\n')[0]), runId, round: n, testAccuracy: 0.1 * (n + 1), roundSeconds: 10 });
    // the fixture's rounds.jsonl ends in a torn line: this append starts a new line after it
    store.appendRound(round(0));
    const r0 = await stream.next((o) => o.runs.find((x) => x.runId === runId)?.round === 0);
    expect(r0.warnings.some((w) => /rounds\.jsonl: skipped 1 unparsable line/.test(w))).toBe(true);

    // a writer midway through a line: nothing of it shows until its newline is there
    const line = JSON.stringify(round(1));
    appendFileSync(join(results, 'rounds.jsonl'), line.slice(0, 40));
    store.appendRun({ ...started, runId: 'live-run-2' }); // another change: the server looks again
    const half = await stream.next((o) => o.runs.some((x) => x.runId === 'live-run-2'));
    expect(half.runs.find((x) => x.runId === runId)?.round).toBe(0);
    appendFileSync(join(results, 'rounds.jsonl'), `${line.slice(40)}\n`);
    const r1 = await stream.next((o) => o.runs.find((x) => x.runId === runId)?.round === 1);
    expect(r1.runs.find((x) => x.runId === runId)).toMatchObject({ activity: 'training round 2', eta: '20s', testAccuracy: 0.2 });

    // lines that parse but are no records of ours are passed over
    for (const file of ['runs.jsonl', 'rounds.jsonl', 'steps.jsonl']) appendFileSync(join(results, file), 'null\n[]\n7\n{"runId":"junk","round":"x","keyFields":1}\n');
    store.appendRun({ ...started, runId: 'live-run-3' });
    const after = await stream.next((o) => o.runs.some((x) => x.runId === 'live-run-3'));
    expect(after.runs.find((x) => x.runId === runId)?.round).toBe(1);
    expect(after.runs.some((x) => x.runId === 'junk')).toBe(false);
    expect((await get(port, '/api/overview')).status).toBe(200);
    stream.close();
  });

  it('shows a run whose sweep died without recording its end as interrupted', async () => {
    const stream = openStream(port);
    await stream.ready;
    const runId = 'orphan-run';
    const key = 'orphan-key';
    new ResultsStore(results).appendRun({ ...runs()[0], runId, key, status: 'started' });
    const before = await stream.next((o) => o.runs.some((x) => x.runId === runId));
    expect(before.runs.find((x) => x.runId === runId)?.state).toBe('running');
    // the lock its sweep held names a process that is gone (as after a SIGKILL)
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    mkdirSync(join(results, 'locks'), { recursive: true });
    writeFileSync(join(results, 'locks', `${key}.lock`), JSON.stringify({ pid: dead, host: hostname(), at: new Date().toISOString() }));
    const after = await stream.next((o) => o.runs.find((x) => x.runId === runId)?.state === 'interrupted');
    expect(after.counts.interrupted).toBe(1);
    stream.close();
  });

  it("shows a run's config, rounds, profile and log tail", async () => {
    const run = runs()[0];
    const logDir = join(results, 'logs', run.key);
    mkdirSync(logDir, { recursive: true });
    writeFileSync(join(logDir, 'aggregator.log'), Array.from({ length: 200 }, (_, i) => `line ${i}`).join('\n') + '\n');
    writeFileSync(join(logDir, 'profile.json'), JSON.stringify({ kind: 'profile', runId: run.runId, timing: { roundSeconds: 9 } }));
    const r = await get(port, `/api/run?id=${encodeURIComponent(run.runId)}`);
    expect(r.status).toBe(200);
    const d = JSON.parse(r.body);
    expect(d.record.config).toEqual(run.config);
    expect(d.rounds.map((x: RoundRecord) => x.round)).toEqual([0, 1, 2, 3]);
    expect(d.profile.timing.roundSeconds).toBe(9);
    expect(d.logs).toEqual([{ name: 'aggregator', file: join('logs', run.key, 'aggregator.log'), lines: Array.from({ length: 80 }, (_, i) => `line ${120 + i}`) }]);
  });

  it('serves only its routes and what the store holds (no path traversal)', async () => {
    const evil: RunRecord = { ...runs()[0], runId: 'evil', key: '../../..' };
    new ResultsStore(results).appendRun(evil);
    await new Promise<void>((resolve) => {
      const off = dash.feed.subscribe((json) => {
        if (json.includes('"evil"')) {
          off();
          resolve();
        }
      });
    });
    const d = JSON.parse((await get(port, '/api/run?id=evil')).body);
    expect(d.logs).toEqual([]);
    expect(d.profile).toBeNull();
    for (const path of [
      '/../package.json',
      '/assets/../../package.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/vega.min.js/../../../package.json',
      '//etc/passwd',
      '/page/index.html',
      '/dashboard/server.ts',
      '/node_modules/vega/package.json',
      '/runs.jsonl',
      '/logs/',
      '/api/run?id=../../../etc/passwd',
      '/api/run?id=',
    ]) {
      const r = await get(port, path);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.body, path).not.toMatch(/"name": "fedslice"|root:|"kind":"run"/);
    }
    expect((await get(port, '/api/overview', {}, 'POST')).status).toBe(405);
  });

  it('on loopback answers only requests addressed to a loopback name', async () => {
    expect((await get(port, '/api/overview', { host: 'attacker.example' })).status).toBe(403);
    expect((await get(port, '/api/overview', { host: `localhost:${port}` })).status).toBe(200);
  });

  it('bound beyond loopback it requires its token', async () => {
    const open = await startDashboard({ results, host: '0.0.0.0', port: 0 });
    try {
      const token = new URL(open.url).searchParams.get('token');
      expect(token).toMatch(/^[0-9a-f]{32}$/);
      expect((await get(open.port, '/api/overview')).status).toBe(401);
      expect((await get(open.port, '/?token=wrong')).status).toBe(401);
      expect((await get(open.port, '/api/events', { authorization: 'Bearer wrong' })).status).toBe(401);
      const page = await get(open.port, `/?token=${token}`);
      expect(page.status).toBe(200);
      const cookie = String(page.headers['set-cookie']).split(';')[0];
      expect((await get(open.port, '/api/overview', { cookie })).status).toBe(200);
      expect((await get(open.port, '/api/overview', { authorization: `Bearer ${token}` })).status).toBe(200);
    } finally {
      await open.close();
    }
  });
});
