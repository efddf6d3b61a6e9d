/**
 * Vega-Lite specs, one builder per chart. Colour is the learning rate, dashes are swapping,
 * and every text uses DejaVu Sans so the headless renderer (resvg) finds the font.
 */
import type { TopLevelSpec } from 'vega-lite';
import { type ConfigField, type ConfigKey, seriesId } from '../core/results/schema.ts';
import { configLabel, formatLearningRate } from './fields.ts';
import type { CurvePoint, FinalRun, ScalingRow, TimingStats } from './tables.ts';
import type { ModeRow, TimePoint } from './sync-async.ts';

export const CHART_FONT = 'DejaVu Sans';

export interface ChartDef {
  /** File stem: <name>.vl.json, <name>.svg, <name>.png. */
  name: string;
  title: string;
  spec: TopLevelSpec;
}

export const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

export const CONFIG = {
  font: CHART_FONT,
  background: 'white',
  padding: 12,
  title: { fontSize: 16, subtitleFontSize: 12, subtitleColor: '#555', anchor: 'start', offset: 12 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
  header: { labelFontSize: 13, titleFontSize: 12, titleFontWeight: 'normal' },
  view: { stroke: '#cccccc' },
} as const;

const SWAP_DOMAIN = ['no swap', 'swap'];
const SWAP_DASHES = [
  [1, 0],
  [6, 4],
];
const PHASES = ['train', 'transfer', 'merge', 'eval'];

/** Readable encodings shared by the charts. */
function lrColor(rows: readonly { learningRate: number }[]) {
  const lrs = [...new Set(rows.map((r) => r.learningRate))].sort((a, b) => a - b);
  return {
    field: 'lr',
    type: 'nominal' as const,
    title: 'learning rate',
    scale: { domain: lrs.map(formatLearningRate), scheme: 'tableau10' },
  };
}

const swapDash = {
  field: 'swapLabel',
  type: 'nominal' as const,
  title: 'swapping',
  scale: { domain: SWAP_DOMAIN, range: SWAP_DASHES },
  // draw the legend entries as line strokes so the dashes show
  legend: {
    symbolType: 'stroke',
    symbolStrokeWidth: 2,
    symbolSize: 400,
    encode: { symbols: { update: { stroke: { value: '#444444' }, fill: { value: 'transparent' } } } },
  },
};

function decorate<T extends ConfigKey>(rows: readonly T[]) {
  return rows.map((r) => ({
    ...r,
    lr: formatLearningRate(r.learningRate),
    lrBand: formatLearningRate(r.learningRate),
    swapLabel: r.swap ? 'swap' : 'no swap',
    series: seriesId(r),
  }));
}

export function learningCurvesChart(points: readonly CurvePoint[]): TopLevelSpec {
  const x = {
    field: 'round',
    type: 'quantitative' as const,
    title: 'round (0 = before training)',
    axis: { tickMinStep: 1, format: 'd' },
  };
  const color = lrColor(points);
  return {
    $schema: SCHEMA,
    title: {
      text: 'Learning curves',
      subtitle: 'test accuracy per round: mean over seeds, shaded band = mean ± 1 std; one panel per world size W',
    },
    data: { values: decorate(points) },
    facet: {
      column: { field: 'worldSize', type: 'ordinal', title: null, header: { labelExpr: "'W = ' + datum.value" } },
    },
    spec: {
      width: 300,
      height: 220,
      layer: [
        {
          mark: { type: 'area', opacity: 0.15 },
          encoding: {
            x,
            y: { field: 'accLo', type: 'quantitative', title: 'test accuracy' },
            y2: { field: 'accHi' },
            // fill, not color: a separate legend-less scale so the pale band stays out of the legend
            fill: { ...color, field: 'lrBand', legend: null },
            detail: { field: 'config', type: 'nominal' },
          },
        },
        {
          mark: { type: 'line', strokeWidth: 2, point: { size: 30 } },
          encoding: {
            x,
            y: { field: 'accMean', type: 'quantitative', title: 'test accuracy', scale: { zero: true } },
            color,
            strokeDash: swapDash,
            detail: { field: 'config', type: 'nominal' },
          },
        },
      ],
    },
    config: CONFIG,
  } as TopLevelSpec;
}

export function hyperparameterChart(finals: readonly FinalRun[]): TopLevelSpec {
  const values = decorate(finals);
  const lrs = lrColor(finals).scale.domain;
  const panel = (field: string, title: string, type: 'nominal' | 'ordinal', sort?: string[]) => ({
    width: 150,
    height: 220,
    layer: [
      {
        mark: { type: 'boxplot', extent: 'min-max', size: 26, color: '#9ecae1', median: { color: '#08519c' } },
        encoding: {
          x: { field, type, title, sort, axis: { labelAngle: 0 } },
          y: { field: 'testAccuracy', type: 'quantitative', title: 'final test accuracy', scale: { zero: true } },
        },
      },
      {
        mark: { type: 'circle', size: 36, color: '#333333', opacity: 0.8 },
        encoding: {
          x: { field, type, sort },
          y: { field: 'testAccuracy', type: 'quantitative' },
        },
      },
    ],
  });
  return {
    $schema: SCHEMA,
    title: {
      text: 'Final test accuracy by hyperparameter',
      subtitle: 'each dot is one finished run at its final round; boxes span min to max, line = median',
    },
    data: { values },
    hconcat: [
      panel('lr', 'learning rate', 'ordinal', lrs),
      panel('worldSize', 'world size W', 'ordinal'),
      panel('swapLabel', 'swapping', 'nominal', SWAP_DOMAIN),
      panel('seed', 'seed', 'ordinal'),
    ],
    resolve: { scale: { y: 'shared' } },
    config: CONFIG,
  } as TopLevelSpec;
}

export function scalingChart(rows: readonly ScalingRow[]): TopLevelSpec {
  const values = decorate(rows);
  const worldSizes = [...new Set(rows.map((r) => r.worldSize))].sort((a, b) => a - b);
  const x = { field: 'worldSize', type: 'ordinal' as const, title: 'world size W', sort: worldSizes, axis: { labelAngle: 0 } };
  const color = lrColor(rows);
  const line = (field: string, title: string, extra: object[] = []) => ({
    width: 220,
    height: 200,
    layer: [
      ...extra,
      {
        data: { values },
        mark: { type: 'line', strokeWidth: 2, point: { size: 40 } },
        encoding: {
          x,
          y: { field, type: 'quantitative', title, scale: { zero: true } },
          color,
          strokeDash: swapDash,
          detail: { field: 'series', type: 'nominal' },
        },
      },
    ],
  });
  const ideal = worldSizes.map((w) => ({ worldSize: w, speedup: w, label: 'ideal (= W)' }));
  const idealLayers = [
    {
      data: { values: ideal },
      mark: { type: 'line', color: '#888888', strokeDash: [3, 3], strokeWidth: 1.5 },
      encoding: { x, y: { field: 'speedup', type: 'quantitative' } },
    },
    {
      data: { values: ideal.slice(-1) },
      mark: { type: 'text', color: '#666666', align: 'right', baseline: 'middle', dx: -10, fontSize: 11 },
      encoding: { x, y: { field: 'speedup', type: 'quantitative' }, text: { field: 'label' } },
    },
  ];
  const hasSpeedup = rows.some((r) => r.speedup !== null);
  return {
    $schema: SCHEMA,
    title: {
      text: 'Scaling with the number of trainers',
      subtitle: hasSpeedup
        ? 'mean over seeds; speedup = seconds per round at W=1 / at W (same settings), dashed grey = ideal linear speedup'
        : 'mean over seeds; no W=1 run, so no speedup can be computed',
    },
    hconcat: [
      line('accMean', 'final test accuracy'),
      line('roundSeconds', 'seconds per round'),
      ...(hasSpeedup ? [line('speedup', 'speedup vs W=1', idealLayers)] : []),
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

export function timeBreakdownChart(timing: readonly TimingStats[], shown: readonly ConfigField[]): TopLevelSpec {
  const labels = timing.map((t) => configLabel(t, shown));
  const values = timing.flatMap((t, i) =>
    PHASES.map((phase, order) => ({
      label: labels[i],
      phase,
      order,
      seconds: t[`${phase}Seconds` as 'trainSeconds'],
    })),
  );
  return {
    $schema: SCHEMA,
    title: {
      text: 'Time per training round',
      subtitle: 'mean seconds per round (rounds >= 1 of finished runs); train = slowest trainer',
    },
    data: { values },
    width: 480,
    height: { step: 24 },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'label', type: 'nominal', title: null, sort: labels, axis: { labelLimit: 360 } },
      x: { field: 'seconds', type: 'quantitative', title: 'seconds per round', stack: 'zero' },
      color: { field: 'phase', type: 'nominal', title: 'phase', scale: { domain: PHASES, scheme: 'set2' } },
      order: { field: 'order', type: 'quantitative' },
    },
    config: CONFIG,
  } as TopLevelSpec;
}

const MODE_COLORS: Record<string, string> = { slice: '#59a14f', fedavg: '#4e79a7', async: '#f28e2b' };

function modeColor(modes: readonly string[]) {
  const domain = ['slice', 'fedavg', 'async'].filter((m) => modes.includes(m));
  return { field: 'mode', type: 'nominal' as const, title: 'mode', scale: { domain, range: domain.map((m) => MODE_COLORS[m]) } };
}

/** Async dashed, so a curve hidden under another mode's still shows. */
function modeDash(modes: readonly string[]) {
  const domain = ['slice', 'fedavg', 'async'].filter((m) => modes.includes(m));
  return { field: 'mode', type: 'nominal' as const, title: 'mode', scale: { domain, range: domain.map((m) => (m === 'async' ? [6, 3] : [1, 0])) } };
}

/** Sync vs async per world size: total time, final accuracy, and throughput speedup against ideal. */
export function syncAsyncChart(rows: readonly ModeRow[]): TopLevelSpec {
  const values = rows.map((r) => ({ ...r }));
  const worldSizes = [...new Set(rows.map((r) => r.worldSize))].sort((a, b) => a - b);
  const color = modeColor(rows.map((r) => r.mode));
  const x = { field: 'worldSize', type: 'ordinal' as const, title: 'world size W', sort: worldSizes, axis: { labelAngle: 0 } };
  const bars = (field: string, title: string) => ({
    width: { step: 44 },
    height: 200,
    data: { values },
    mark: { type: 'bar' },
    encoding: { x, xOffset: { field: 'mode', sort: color.scale.domain }, y: { field, type: 'quantitative', title }, color },
  });
  const ideal = worldSizes.map((w) => ({ worldSize: w, speedup: w }));
  const hasSpeedup = rows.some((r) => r.speedup !== null);
  return {
    $schema: SCHEMA,
    title: {
      text: 'Synchronous vs asynchronous federation',
      subtitle: 'mean over seeds; speedup = samples/s at W over samples/s at W=1 in the same mode; dashed grey = ideal linear',
    },
    hconcat: [
      bars('totalSeconds', 'total training time (s)'),
      bars('accMean', 'final test accuracy'),
      ...(hasSpeedup
        ? [
            {
              width: 220,
              height: 200,
              layer: [
                { data: { values: ideal }, mark: { type: 'line', color: '#888888', strokeDash: [3, 3], strokeWidth: 1.5 }, encoding: { x, y: { field: 'speedup', type: 'quantitative' } } },
                {
                  data: { values: values.filter((v) => v.speedup !== null) },
                  mark: { type: 'line', strokeWidth: 2, point: { size: 40 } },
                  encoding: { x, y: { field: 'speedup', type: 'quantitative', title: 'speedup vs W=1 (samples/s)' }, color, strokeDash: modeDash(rows.map((r) => r.mode)) },
                },
              ],
            },
          ]
        : []),
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

/** Test accuracy against wall-clock time and against samples seen, one column per world size. */
export function accuracyOverTimeChart(points: readonly TimePoint[]): TopLevelSpec {
  const worldSizes = [...new Set(points.map((p) => p.worldSize))].sort((a, b) => a - b);
  const axes = ['wall-clock seconds', 'training samples seen'];
  // async drawn last, so its dashed curve shows on top of an identical synchronous one
  const ordered = [...points].sort((a, b) => Number(a.mode === 'async') - Number(b.mode === 'async'));
  const values = ordered.flatMap((p) => [
    { ...p, axis: axes[0], x: p.elapsedSeconds },
    { ...p, axis: axes[1], x: p.samplesSeen },
  ]);
  return {
    $schema: SCHEMA,
    title: {
      text: 'Test accuracy over time and samples seen',
      subtitle: 'mean over seeds at each evaluation (sync: each round; async: every evalEvery updates)',
    },
    data: { values },
    facet: {
      row: { field: 'axis', type: 'nominal', title: null, sort: axes },
      column: { field: 'worldSize', type: 'ordinal', title: 'world size W', sort: worldSizes },
    },
    spec: {
      width: 180,
      height: 150,
      mark: { type: 'line', strokeWidth: 2, point: { size: 30 } },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: null },
        y: { field: 'accMean', type: 'quantitative', title: 'test accuracy', scale: { zero: false } },
        color: modeColor(points.map((p) => p.mode)),
        strokeDash: modeDash(points.map((p) => p.mode)),
        detail: { field: 'config', type: 'nominal' },
      },
    },
    resolve: { scale: { x: 'independent' } },
    config: CONFIG,
  } as TopLevelSpec;
}
