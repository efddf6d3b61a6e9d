/** Chart specs compile with vega-lite and render headless to valid PNGs of sensible size. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChartDef, hyperparameterChart, learningCurvesChart, scalingChart, timeBreakdownChart } from '../analysis/charts.ts';
import { shownConfigFields } from '../analysis/fields.ts';
import { loadStore } from '../analysis/load.ts';
import { renderChart } from '../analysis/render.ts';
import { configStats, curvePoints, finalRuns, scalingRows, timingStats } from '../analysis/tables.ts';
import { applyWhere, parseWhere } from '../analysis/where.ts';
import { writeFixtureStore } from './fixtures/make-results-store.ts';
import { pngSize } from './fixtures/png.ts';

let dir: string;
let charts: ChartDef[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedslice-charts-'));
  writeFixtureStore(dir);
  const { rounds } = loadStore(dir);
  const stats = configStats(rounds);
  const timing = timingStats(rounds);
  charts = [
    { name: 'learning-curves', title: '', spec: learningCurvesChart(curvePoints(rounds)) },
    { name: 'hyperparameters', title: '', spec: hyperparameterChart(finalRuns(rounds)) },
    { name: 'scaling', title: '', spec: scalingChart(scalingRows(stats, timing)) },
    { name: 'time-breakdown', title: '', spec: timeBreakdownChart(timing, shownConfigFields(stats)) },
  ];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('chart specs', () => {
  it('each compiles with vega-lite into a vega spec that parses', () => {
    for (const c of charts) {
      const vg = compile(c.spec).spec;
      expect(vg.marks?.length, c.name).toBeGreaterThan(0);
      expect(() => vega.parse(vg), c.name).not.toThrow();
    }
  });

  it('name the installed font and carry titles and axis titles', () => {
    for (const c of charts) {
      const text = JSON.stringify(c.spec);
      expect(text, c.name).toContain('"font":"DejaVu Sans"');
      expect(text, c.name).toMatch(/"title":\{"text":"[A-Z]/);
    }
    expect(JSON.stringify(charts[0].spec)).toContain('"title":"test accuracy"');
    expect(JSON.stringify(charts[2].spec)).toContain('"title":"speedup vs W=1"');
  });

  it('learning curves hold the mean and the +/- std band per round', () => {
    const values = (charts[0].spec as { data: { values: Record<string, unknown>[] } }).data.values;
    const last = values.find((v) => v.worldSize === 1 && v.learningRate === 1e-4 && v.round === 3)!;
    expect(last.accMean).toBeCloseTo(0.61, 12);
    expect(last.accLo).toBeCloseTo(0.6, 12);
    expect(last.accHi).toBeCloseTo(0.62, 12);
    expect(last.lr).toBe('1e-4');
  });
});

describe('headless rendering', () => {
  it('renders every chart to an SVG in DejaVu Sans and a PNG of sensible size', async () => {
    for (const c of charts) {
      const { svg, png, warnings } = await renderChart(c.spec);
      expect(warnings, c.name).toEqual([]);
      expect(svg.startsWith('<svg'), c.name).toBe(true);
      expect(svg, c.name).toContain('font-family="DejaVu Sans"');
      const { width, height } = pngSize(png);
      expect(width, c.name).toBeGreaterThanOrEqual(600);
      expect(width, c.name).toBeLessThanOrEqual(4000);
      expect(height, c.name).toBeGreaterThanOrEqual(300);
      expect(height, c.name).toBeLessThanOrEqual(3000);
      // twice the SVG size
      const svgWidth = Number(/width="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
      expect(width).toBe(Math.round(svgWidth * 2));
      expect(png.length, c.name).toBeGreaterThan(10_000);
    }
  });

  it('renders the scaling chart without a W=1 baseline', async () => {
    const { rounds } = loadStore(dir);
    const only2 = applyWhere(rounds, parseWhere('worldSize=2'));
    const spec = scalingChart(scalingRows(configStats(only2), timingStats(only2)));
    expect(JSON.stringify(spec)).toContain('no W=1 run');
    expect(JSON.stringify(spec)).not.toContain('speedup vs W=1');
    const { png } = await renderChart(spec);
    expect(pngSize(png).width).toBeGreaterThan(600);
  });
});
