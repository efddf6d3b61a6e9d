/** `fedslice analyze` as a child process over a copy of the fixture store. */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { compile } from 'vega-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFixtureStore } from './fixtures/make-results-store.ts';
import { pngSize } from './fixtures/png.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'fedslice.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function fedslice(args: string[]): Promise<Result> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

let dir: string;
let results: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedslice-analyze-cli-'));
  results = join(dir, 'results');
  writeFixtureStore(results);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fedslice analyze', () => {
  it('--no-plots prints the tables and writes no file', async () => {
    const out = join(dir, 'no-plots-out');
    const r = await fedslice(['analyze', '--results', results, '--no-plots', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(results).sort()).toEqual(['rounds.jsonl', 'runs.jsonl']);
    expect(r.stderr).toContain('warning: rounds.jsonl: skipped a torn last line');
    for (const title of ['Store summary', 'Final round per configuration', 'Top 5 configurations', 'Swap vs no swap', 'Timing per configuration']) {
      expect(r.stdout).toContain(title);
    }
    // the best configuration's row in the top table
    expect(r.stdout).toMatch(/\n1 {2}1 {2}1e-4 {2}no {4}3 {4}0\.6100 {3}0\.0100 /);
    expect(r.stdout).toMatch(/\n2 {2}1e-4 {10}3 {7}0\.2200 {7}3 {4}0\.2800 {9}\+0\.0600\n/);
  });

  it('renders charts, report.html and the exports', async () => {
    const out = join(dir, 'report');
    const csv = join(dir, 'exports', 'configs.csv');
    const json = join(dir, 'exports', 'configs.json');
    const r = await fedslice([
      'analyze', '--results', results, '--out', out, '--top', '2', '--metric', 'testLoss',
      '--where', 'learningRate=1e-4|1e-3', '--csv', csv, '--json', json,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Top 2 configurations by lowest mean final test loss');
    const names = ['learning-curves', 'hyperparameters', 'scaling', 'time-breakdown'];
    expect(readdirSync(out).sort()).toEqual(
      [...names.flatMap((n) => [`${n}.png`, `${n}.svg`, `${n}.vl.json`]), 'report.html'].sort(),
    );
    for (const n of names) {
      const { width, height } = pngSize(readFileSync(join(out, `${n}.png`)));
      expect(width, n).toBeGreaterThanOrEqual(600);
      expect(width, n).toBeLessThanOrEqual(4000);
      expect(height, n).toBeGreaterThanOrEqual(300);
      expect(height, n).toBeLessThanOrEqual(3000);
      expect(compile(JSON.parse(readFileSync(join(out, `${n}.vl.json`), 'utf8'))).spec.marks?.length, n).toBeGreaterThan(0);
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(4);
    expect(html).not.toMatch(/<(img|script|link)\b/); // self-contained
    expect(html).toContain('<td class="num">0.6100</td>');
    expect(html).toContain('Swap vs no swap');
    expect(html).toContain('18 runs (17 completed, 1 failed); 17 finished; 70 round records; 6 configurations');

    const rows = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>[];
    expect(rows).toHaveLength(6);
    expect(rows[0]).toMatchObject({ config: 'ws1_lr0.0001_swap0_lsw0_r3_slice_synthetic_w0.125', worldSize: 1, n: 3, accMean: 0.61 });
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(7);
    expect(lines[0]).toBe('config,worldSize,learningRate,swap,layerwiseSwap,rounds,mode,dataset,width,fraction,n,accMean,accStd,accMin,accMax,lossMean,lossStd,lossMin,lossMax');
  });

  it('works with only round-0 records and a failed run', async () => {
    const early = join(dir, 'early');
    mkdirSync(early);
    const all = readFileSync(join(results, 'rounds.jsonl'), 'utf8').split('\n');
    appendFileSync(join(early, 'rounds.jsonl'), all.filter((l) => l.includes('"round":0,')).slice(0, 3).join('\n') + '\n');
    appendFileSync(join(early, 'runs.jsonl'), readFileSync(join(results, 'runs.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"failed"')).join('\n') + '\n');
    const out = join(dir, 'early-report');
    const r = await fedslice(['analyze', '--results', early, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/failed\s+1/);
    expect(r.stdout).toContain('(no run has reached its final round yet)');
    expect(readdirSync(out)).toEqual(['report.html']);
  });

  it('says clearly when the store is missing, and exits non-zero', async () => {
    const missing = join(dir, 'missing');
    const r = await fedslice(['analyze', '--results', missing, '--no-plots']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`fedslice: error: no results in ${missing}: run \`fedslice runner sweep --config configs/smoke.json\` first`);
  });

  it('rejects a bad --where, --metric or --top in one line', async () => {
    for (const [args, msg] of [
      [['--where', 'colour=red'], /unknown key "colour"; valid keys: worldSize, learningRate/],
      [['--where', 'worldSize=3'], /no runs in .* match --where worldSize=3/],
      [['--metric', 'f1'], /--metric f1 is not recorded for any finished run here; known: .*testAccuracy, testLoss/],
      [['--metric', 'test-loss'], /--metric takes a metric name, optionally with :max or :min/],
      [['--top', '0'], /--top must be a positive whole number/],
    ] as const) {
      const r = await fedslice(['analyze', '--results', results, '--no-plots', ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:'));
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(msg);
    }
  });
});
