// One run's page: its facts, rounds, profile, log tails and config, fetched again on each change of the store.
import { connect, el, num, pct } from './common.js';

const id = new URLSearchParams(location.search).get('id') ?? '';

function facts(d) {
  const r = d.record;
  const rows = [
    ['run id', r.runId],
    ['key', r.key],
    ['status', r.status],
    ['started', r.startedAt],
    ['ended', r.endedAt ?? '-'],
    ['wall seconds', r.wallSeconds === undefined ? '-' : num(r.wallSeconds, 1)],
    ['backend', r.environment?.backend ?? '-'],
    ['host', r.environment?.host ?? '-'],
  ];
  if (r.error) rows.push(['error', r.error]);
  document.getElementById('facts').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function rounds(d) {
  document.querySelector('#rounds tbody').replaceChildren(
    ...d.rounds.map((x) =>
      el(
        'tr',
        { 'data-round': x.round },
        ...[x.round, pct(x.testAccuracy), num(x.testLoss), num(x.trainLoss), num(x.roundSeconds, 2), num(x.trainSeconds, 2), num(x.transferSeconds, 2), num(x.mergeSeconds, 2), num(x.evalSeconds, 2), num(x.samplesPerSecond, 1)].map((v) => el('td', {}, v)),
      ),
    ),
  );
}

function logs(d) {
  document.getElementById('logs').replaceChildren(
    ...(d.logs.length ? d.logs.map((l) => el('details', { open: '' }, el('summary', {}, `${l.name} (${l.file}), last ${l.lines.length} lines`), el('pre', { class: 'log' }, l.lines.join('\n')))) : [el('p', { class: 'muted' }, 'no logs for this run in the store')]),
  );
}

async function load() {
  const res = await fetch(`/api/run?id=${encodeURIComponent(id)}`);
  const missing = document.getElementById('missing');
  if (!res.ok) {
    missing.hidden = false;
    missing.textContent = `No run ${id} in this results store.`;
    return;
  }
  missing.hidden = true;
  const d = await res.json();
  document.getElementById('title').textContent = d.record.key;
  document.title = `fedslice ${d.record.key}`;
  facts(d);
  rounds(d);
  if (d.profile) document.getElementById('profile').textContent = JSON.stringify({ timing: d.profile.timing, trainers: d.profile.trainers, data: d.profile.data, summary: d.profile.summary }, null, 2);
  logs(d);
  document.getElementById('config').textContent = JSON.stringify(d.record.config, null, 2);
}

let busy = false;
let again = false;
async function refresh() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  try {
    do {
      again = false;
      await load();
    } while (again);
  } finally {
    busy = false;
  }
}

connect(() => refresh());
