/**
 * What the dashboard costs and how fast it is, on a real sweep: a `fedslice dashboard` process over
 * a fresh results directory with a page open in headless chromium (or, without chromium, an
 * event-stream client), while the sweep runs beside it.
 * - latency: for every round record, from the moment it was appended to rounds.jsonl (the file's
 *   mtime, read by this process on each change of the file when one line came in) to the moment
 *   the open page first shows that round (a MutationObserver in the page; same machine, same
 *   clock); median, p95 and max. Also from the record's own `time`, stamped by the aggregator
 *   before it writes the round's checkpoint, so that figure includes the checkpoint write;
 * - CPU: the dashboard process's CPU seconds while idle with the page open (10 s) and while the
 *   sweep runs, as % of one core and against the sweep's own CPU seconds (its roles included)
 *   measured in the same run.
 *
 *   node --import tsx bench/dashboard.ts [--config configs/smoke.json] [--screenshot FILE]
 *
 * --screenshot saves the page once it shows three finished runs beside a running one past round 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, statSync, watch } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FEDSLICE_BIN } from '../runner/processes.ts';
import { browserMissing, launchBrowser } from '../test/helpers/browser.ts';

const { values } = parseArgs({ options: { config: { type: 'string', default: 'configs/smoke.json' }, screenshot: { type: 'string' } } });
const TICKS = 100; // USER_HZ on Linux
const IDLE_S = 10;

/** utime + stime (+ reaped children's with `children`) of a process, in seconds. */
function cpuSeconds(pid: number | 'self', children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // fields 14-17 of stat (utime stime cutime cstime) are at 11-14 after the command name
  return (f[11] + f[12] + (children ? f[13] + f[14] : 0)) / TICKS;
}

function firstMatch(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (d) => {
      text += d;
      const m = re.exec(text);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`exited with ${code} before printing ${re}: ${text}`)));
  });
}

const quantile = (xs: number[], q: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

const loadBefore = loadavg()[0];
const results = mkdtempSync(join(tmpdir(), 'fedslice-dashboard-bench-'));
mkdirSync(results, { recursive: true });
const dash = spawn(process.execPath, [FEDSLICE_BIN, 'dashboard', '--results', results, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await firstMatch(dash, /dashboard: (http:\/\/\S+)/);

const browser = browserMissing ? null : await launchBrowser();
if (browserMissing) console.log(`${browserMissing}; latency is measured on the event stream instead of the page`);
const page = browser ? await browser.context.newPage() : null;
const seen = new Map<string, number>(); // "runId/round" -> first shown (ms since epoch)
if (page) {
  await page.goto(url);
  await page.waitForSelector('#live[data-state="live"]');
  await page.evaluate(() => {
    const marks: Record<string, number> = {};
    Object.assign(window, { marks });
    new MutationObserver(() => {
      for (const row of document.querySelectorAll('#runs tbody tr[data-run]')) {
        const round = row.querySelector('td.round')?.textContent?.split('/')[0];
        const k = `${row.getAttribute('data-run')}/${round}`;
        if (round && round !== '-' && !(k in marks)) marks[k] = Date.now();
      }
    }).observe(document.getElementById('runs')!, { childList: true, subtree: true, characterData: true });
  });
} else {
  const res = await fetch(`${url.replace(/\/$/, '')}/api/events`);
  const reader = res.body!.getReader();
  void (async () => {
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += new TextDecoder().decode(value);
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const data = /^data: (.*)$/m.exec(buf.slice(0, end))?.[1];
        buf = buf.slice(end + 2);
        if (!data) continue;
        for (const r of JSON.parse(data).runs) if (r.round !== null && !seen.has(`${r.runId}/${r.round}`)) seen.set(`${r.runId}/${r.round}`, Date.now());
      }
    }
  })();
}

/** "runId/round" -> when its line was appended: the file's mtime when it was the only new line. */
const appended = new Map<string, number>();
const roundsFile = join(results, 'rounds.jsonl');
let roundsRead = 0;
const appendWatch = watch(results, () => {
  let st;
  try {
    st = statSync(roundsFile);
  } catch {
    return;
  }
  if (st.size <= roundsRead) return;
  const fd = openSync(roundsFile, 'r');
  const buf = Buffer.alloc(st.size - roundsRead);
  readSync(fd, buf, 0, buf.length, roundsRead);
  closeSync(fd);
  const text = buf.toString('utf8');
  const end = text.lastIndexOf('\n');
  if (end < 0) return;
  roundsRead += Buffer.byteLength(text.slice(0, end + 1));
  const lines = text.slice(0, end).split('\n').filter((l) => l.trim());
  if (lines.length !== 1) return; // several at once: which one the mtime belongs to is unknown
  const r = JSON.parse(lines[0]) as { runId: string; round: number };
  appended.set(`${r.runId}/${r.round}`, st.mtimeMs);
});

const idle0 = cpuSeconds(dash.pid!);
await new Promise((r) => setTimeout(r, IDLE_S * 1000));
const idleCpu = cpuSeconds(dash.pid!) - idle0;

const sweepCpu0 = cpuSeconds('self', true) - cpuSeconds('self');
const dashCpu0 = cpuSeconds(dash.pid!);
const t0 = Date.now();
const sweep = spawn(process.execPath, [FEDSLICE_BIN, 'runner', 'sweep', '--config', values.config!, '--results', results], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CI: 'true' } });
let shot = false;
const shooter = setInterval(async () => {
  if (!page || shot || !values.screenshot) return;
  const ready = await page.evaluate(() => document.querySelectorAll('#runs td.state.completed').length >= 3 && [...document.querySelectorAll('#runs tr[data-state="running"] td.round')].some((c) => Number(c.textContent?.split('/')[0]) >= 1) && document.querySelector('#chart-loss-by-step svg'));
  if (ready && !shot) {
    shot = true;
    await page.screenshot({ path: values.screenshot, fullPage: true });
  }
}, 2000);
const code = await new Promise<number | null>((r) => sweep.on('exit', r));
clearInterval(shooter);
const wall = (Date.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, 3000)); // the last record reaches the page
const dashCpu = cpuSeconds(dash.pid!) - dashCpu0;
const sweepCpu = cpuSeconds('self', true) - cpuSeconds('self') - sweepCpu0;
if (page) for (const [k, v] of Object.entries(await page.evaluate(() => (window as unknown as { marks: Record<string, number> }).marks))) seen.set(k, v);
appendWatch.close();
await browser?.close();
dash.kill('SIGTERM');
if (code !== 0) console.log(`note: the sweep exited with ${code}; see ${results}/logs`);

const latencies: number[] = []; // from the append
const fromStamp: number[] = []; // from the record's time (checkpoint write included)
let skipped = 0;
for (const line of readFileSync(roundsFile, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const r = JSON.parse(line) as { runId: string; round: number; time: string };
  const k = `${r.runId}/${r.round}`;
  const shown = seen.get(k);
  if (shown === undefined) {
    skipped++; // the next round came in the same update
    continue;
  }
  fromStamp.push((shown - Date.parse(r.time)) / 1000);
  const at = appended.get(k);
  if (at !== undefined) latencies.push((shown - at) / 1000);
}
const spread = (xs: number[]) => `median ${quantile(xs, 0.5)?.toFixed(2)} s, p95 ${quantile(xs, 0.95)?.toFixed(2)} s, max ${Math.max(...xs).toFixed(2)} s (${xs.length} rounds)`;

const rows: [string, string][] = [
  ['load average (1 min) before / after', `${loadBefore.toFixed(2)} / ${loadavg()[0].toFixed(2)}`],
  ['sweep', `${values.config}, ${wall.toFixed(0)} s wall, exit ${code}`],
  ['rounds recorded / shown one by one', `${fromStamp.length + skipped} / ${fromStamp.length}`],
  [`append -> ${page ? 'page' : 'event stream'}`, spread(latencies)],
  [`record time -> ${page ? 'page' : 'event stream'} (with the checkpoint write)`, spread(fromStamp)],
  ['dashboard CPU, idle with the page open', `${((100 * idleCpu) / IDLE_S).toFixed(2)} % of a core`],
  ['dashboard CPU during the sweep', `${dashCpu.toFixed(2)} s = ${((100 * dashCpu) / wall).toFixed(2)} % of a core`],
  ['sweep CPU (runner and roles)', `${sweepCpu.toFixed(1)} s`],
  ['dashboard / sweep CPU', `${((100 * dashCpu) / sweepCpu).toFixed(2)} %`],
];
const w = Math.max(...rows.map((r) => r[0].length));
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
console.log(`results: ${results}`);
