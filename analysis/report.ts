/** One self-contained report.html: the store summary, the tables and the charts as inline SVG. */
import type { TableView } from './format.ts';

export interface ReportChart {
  name: string;
  title: string;
  svg: string;
}

export interface ReportInput {
  title: string;
  /** Short lines under the title: where the results came from, filters, warnings. */
  header: string[];
  tables: TableView[];
  charts: ReportChart[];
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function tableHtml(v: TableView): string {
  const h = `<h3>${escapeHtml(v.title)}</h3>`;
  if (v.rows.length === 0) return `${h}\n<p class="empty">(${escapeHtml(v.empty)})</p>`;
  const cls = (i: number) => (v.align[i] === 'right' ? ' class="num"' : '');
  const head = v.headers.map((x, i) => `<th${cls(i)}>${escapeHtml(x)}</th>`).join('');
  const body = v.rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  const note = v.note ? `\n<p class="note">${escapeHtml(v.note)}</p>` : '';
  return `${h}\n<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>${note}`;
}

/** Drops the XML prolog if any, so the SVG can sit inside HTML. */
function inlineSvg(svg: string): string {
  return svg.replace(/^<\?xml[^>]*>\s*/, '');
}

export function buildReport(input: ReportInput): string {
  const charts = input.charts
    .map((c) => `<figure id="${escapeHtml(c.name)}">\n${inlineSvg(c.svg)}\n<figcaption>${escapeHtml(c.title)} (${escapeHtml(c.name)}.png, ${escapeHtml(c.name)}.vl.json)</figcaption>\n</figure>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(input.title)}</title>
<style>
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
.header p { margin: 0.15em 0; color: #444; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e3e3e3; text-align: left; white-space: nowrap; }
th { background: #f4f4f4; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.note, .empty { color: #666; font-size: 0.85em; margin-top: 0.3em; }
figure { margin: 1.5em 0; overflow-x: auto; }
figcaption { color: #666; font-size: 0.85em; }
</style>
</head>
<body>
<h1>${escapeHtml(input.title)}</h1>
<div class="header">
${input.header.map((l) => `<p>${escapeHtml(l)}</p>`).join('\n')}
</div>
<h2>Charts</h2>
${charts || '<p class="empty">(no charts: no run has reached its final round)</p>'}
<h2>Tables</h2>
${input.tables.map(tableHtml).join('\n')}
</body>
</html>
`;
}
