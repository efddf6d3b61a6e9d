// The front page: the runs table and the charts, redrawn from each overview the server pushes.
import { connect, el, pct } from './common.js';

const drawn = new Map(); // chart name -> { json, view }

function renderRuns(o) {
  const body = document.querySelector('#runs tbody');
  body.replaceChildren(
    ...o.runs.map((r) =>
      el(
        'tr',
        { 'data-run': r.runId, 'data-state': r.state },
        el('td', {}, el('a', { href: `/run?id=${encodeURIComponent(r.runId)}` }, r.label)),
        el('td', { class: `state ${r.state}`, title: r.error ?? '' }, r.activity),
        el('td', { class: 'round' }, r.round === null ? `-/${r.rounds}` : `${r.round}/${r.rounds}`),
        el('td', {}, r.eta),
        el('td', { class: 'accuracy' }, pct(r.testAccuracy)),
        el('td', { class: 'muted key' }, r.key),
      ),
    ),
  );
  document.getElementById('no-runs').hidden = o.runs.length > 0;
  const c = o.counts;
  document.getElementById('counts').textContent = `${c.running} running, ${c.completed} completed, ${c.failed} failed, ${c.interrupted} interrupted`;
  document.getElementById('warnings').replaceChildren(...o.warnings.map((w) => el('li', {}, w)));
}

async function renderCharts(charts) {
  const box = document.getElementById('charts');
  const names = new Set(charts.map((c) => c.name));
  for (const [name, d] of drawn) {
    if (names.has(name)) continue;
    d.view?.finalize();
    document.getElementById(`chart-${name}`)?.remove();
    drawn.delete(name);
  }
  let prev = null;
  for (const chart of charts) {
    let holder = document.getElementById(`chart-${chart.name}`);
    if (!holder) holder = el('figure', { id: `chart-${chart.name}`, class: 'chart' }, el('figcaption', {}, chart.title), el('div', { class: 'plot' }));
    // in the server's order, also for a chart that comes back (the running runs' loss)
    const slot = prev ? prev.nextElementSibling : box.firstElementChild;
    if (slot !== holder) box.insertBefore(holder, slot);
    prev = holder;
    const json = JSON.stringify(chart.spec);
    const before = drawn.get(chart.name);
    if (before?.json === json) continue;
    drawn.set(chart.name, { json, view: before?.view });
    try {
      const result = await vegaEmbed(holder.querySelector('.plot'), chart.spec, { actions: false, renderer: 'svg' });
      before?.view?.finalize();
      drawn.get(chart.name).view = result;
    } catch (e) {
      holder.querySelector('.plot').textContent = `cannot draw this chart: ${e.message}`;
    }
  }
}

let latest = null;
let drawing = false;
async function render(o) {
  latest = o;
  document.getElementById('results').textContent = o.results;
  document.getElementById('updated').textContent = new Date(o.updatedAt).toLocaleTimeString();
  renderRuns(o);
  if (drawing) return; // the loop below draws the newest overview when the current drawing ends
  drawing = true;
  try {
    let done = null;
    while (done !== latest) {
      done = latest;
      await renderCharts(done.charts);
    }
  } finally {
    drawing = false;
  }
}

connect(render);
