/**
 * Headless rendering with no browser: Vega-Lite spec -> Vega spec -> vega View (renderer
 * 'none') -> SVG -> PNG through resvg (a native binary shipped in its registry package).
 */
import { Resvg } from '@resvg/resvg-js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { FedsliceError } from '../core/errors.ts';
import { CHART_FONT, type ChartDef } from './charts.ts';

/** PNGs are drawn at twice the SVG size, sharp enough for slides and papers. */
export const PNG_SCALE = 2;

export interface RenderedChart {
  svg: string;
  png: Buffer;
  /** What vega-lite warned about while compiling the spec: each one is a flaw of the spec. */
  warnings: string[];
}

/** vega-lite's logger, keeping warnings and errors instead of printing them to the console. */
class KeptMessages {
  readonly lines: string[] = [];
  private threshold = 2; // vega's levels: 1 errors, 2 warnings too
  level(to?: number): number | this {
    if (to === undefined) return this.threshold;
    this.threshold = to;
    return this;
  }
  error(...args: unknown[]): this {
    this.lines.push(args.join(' '));
    return this;
  }
  warn(...args: unknown[]): this {
    if (this.threshold >= 2) this.lines.push(args.join(' '));
    return this;
  }
  info(): this {
    return this;
  }
  debug(): this {
    return this;
  }
}

export async function renderSvg(spec: TopLevelSpec): Promise<{ svg: string; warnings: string[] }> {
  const messages = new KeptMessages();
  let vgSpec: vega.Spec;
  try {
    vgSpec = compile(spec, { logger: messages }).spec;
  } catch (e) {
    throw new FedsliceError('FEDSLICE_ERR_CHART', `chart spec does not compile with vega-lite: ${(e as Error).message}`);
  }
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  try {
    return { svg: await view.toSVG(), warnings: messages.lines };
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string, scale = PNG_SCALE): Buffer {
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: CHART_FONT, sansSerifFamily: CHART_FONT },
    fitTo: { mode: 'zoom', value: scale },
  });
  return resvg.render().asPng();
}

export async function renderChart(spec: TopLevelSpec): Promise<RenderedChart> {
  const { svg, warnings } = await renderSvg(spec);
  return { svg, png: svgToPng(svg), warnings };
}

/** Writes <name>.vl.json, <name>.svg and <name>.png into dir; returns the rendering. */
export async function writeChart(dir: string, chart: ChartDef): Promise<RenderedChart> {
  mkdirSync(dir, { recursive: true });
  const rendered = await renderChart(chart.spec);
  writeFileSync(join(dir, `${chart.name}.vl.json`), JSON.stringify(chart.spec, null, 2) + '\n');
  writeFileSync(join(dir, `${chart.name}.svg`), rendered.svg);
  writeFileSync(join(dir, `${chart.name}.png`), rendered.png);
  return rendered;
}
