// What both pages share: the live connection (Server-Sent Events) and small DOM helpers.

/** Calls onOverview with each overview the server pushes; shows the connection state. */
export function connect(onOverview) {
  const badge = document.getElementById('live');
  const events = new EventSource('/api/events');
  events.addEventListener('overview', (e) => {
    badge.dataset.state = 'live';
    badge.textContent = 'live';
    onOverview(JSON.parse(e.data));
  });
  events.onerror = () => {
    badge.dataset.state = 'offline';
    badge.textContent = 'reconnecting';
  };
  return events;
}

/** An element with text and attributes; children are appended. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

export const pct = (x) => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : '-');
export const num = (x, digits = 3) => (typeof x === 'number' ? x.toFixed(digits) : '-');
