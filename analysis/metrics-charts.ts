/**
 * Vega-Lite specs over the step log (loss against step and wall-clock time, throughput over time)
 * and the data-fraction study. Curves: one colour per configuration (labelled by the fields that
 * vary, world size aside), one panel per world size, shaded band = mean +/- 1 std over seeds.
 */
import type { TopLevelSpec } from 'vega-lite';
import { CONFIG, SCHEMA } from './charts.ts';
import { type ConfigKey } from '../core/results/schema.ts';
import { configLabel } from './fields.ts';
import type { StepCurvePoint } from './steps.ts';

interface BandCurve {
  title: string;
  subtitle: string;
  xTitle: string;
  yTitle: string;
  points: readonly StepCurvePoint[];
  shown: readonly (keyof ConfigKey)[];
  zero: boolean;
}

function seriesLabel(k: ConfigKey, shown: readonly (keyof ConfigKey)[]): string {
  const fields = shown.filter((f) => f !== 'worldSize');
  return fields.length ? configLabel(k, fields) : 'all runs';
}

function bandCurveChart(c: BandCurve): TopLevelSpec {
  // the band's fill reads a copy of the series field: a legend-less scale of its own, since a fill
  // and a colour over one field share a legend, which one of them cannot both hide and show
  const values = c.points.map((p) => {
    const series = seriesLabel(p, c.shown);
    return { ...p, series, seriesBand: series };
  });
  const color = { field: 'series', type: 'nominal' as const, title: 'configuration', scale: { scheme: 'tableau10' }, legend: { labelLimit: 400 } };
  const x = { field: 'x', type: 'quantitative' as const, title: c.xTitle };
  return {
    $schema: SCHEMA,
    title: { text: c.title, subtitle: c.subtitle },
    data: { values },
    facet: { column: { field: 'worldSize', type: 'ordinal', title: null, header: { labelExpr: "'W = ' + datum.value" } } },
    spec: {
      width: 300,
      height: 220,
      layer: [
        {
          mark: { type: 'area', opacity: 0.18 },
          encoding: { x, y: { field: 'lo', type: 'quantitative', title: c.yTitle }, y2: { field: 'hi' }, fill: { ...color, field: 'seriesBand', legend: null }, detail: { field: 'config', type: 'nominal' } },
        },
        {
          mark: { type: 'line', strokeWidth: 1.8 },
          encoding: { x, y: { field: 'mean', type: 'quantitative', title: c.yTitle, scale: { zero: c.zero } }, color, detail: { field: 'config', type: 'nominal' } },
        },
      ],
    },
    resolve: { scale: { x: 'independent' } },
    config: CONFIG,
  } as TopLevelSpec;
}

export function lossByStepChart(points: readonly StepCurvePoint[], shown: readonly (keyof ConfigKey)[]): TopLevelSpec {
  return bandCurveChart({
    title: 'Training loss against step',
    subtitle: 'step log: interval mean loss, mean over the trainers of a run, then mean ± 1 std over seeds',
    xTitle: 'global step (per trainer)',
    yTitle: 'training loss',
    points,
    shown,
    zero: false,
  });
}

export function lossByTimeChart(points: readonly StepCurvePoint[], shown: readonly (keyof ConfigKey)[]): TopLevelSpec {
  return bandCurveChart({
    title: 'Training loss against wall-clock time',
    subtitle: 'step log binned by seconds since the run started; mean ± 1 std over seeds',
    xTitle: 'seconds since the run started',
    yTitle: 'training loss',
    points,
    shown,
    zero: false,
  });
}

export function throughputChart(points: readonly StepCurvePoint[], shown: readonly (keyof ConfigKey)[]): TopLevelSpec {
  return bandCurveChart({
    title: 'Training throughput over time',
    subtitle: 'samples/s while training, summed over the trainers of a run; mean ± 1 std over seeds',
    xTitle: 'seconds since the run started',
    yTitle: 'samples/s',
    points,
    shown,
    zero: true,
  });
}
