// Dashboard: totals, per-day bars (inline SVG), queue depth, per webhook.
import { api } from '../api.js';
import { h, svg, fill, fmtInt, fmtDuration } from '../lib.js';

const REFRESH_MS = 10000;
const DAYS = 30;
const SERIES = [
  ['received', 'Received'],
  ['delivered', 'Delivered'],
  ['failed', 'Failed'],
];

export async function dashboardView(root, ctx) {
  document.title = 'Dashboard · soldr';
  let stats = await api.stats();
  if (!ctx.alive()) return;

  const body = h('div', { class: 'dashboard' });
  const updated = h('span', { class: 'muted small' });
  fill(root,
    h('div', { class: 'page-head' },
      h('h1', null, 'Dashboard'),
      h('div', { class: 'toolbar-right' }, updated,
        h('button', { type: 'button', class: 'secondary', onclick: () => refresh(true) }, 'Refresh'))),
    body);

  function paint() {
    const t = stats.totals || {};
    const card = (key, label, value, extra, cls) => h('div', { class: ['stat', cls], 'data-stat': key },
      h('span', { class: 'stat-label' }, label),
      h('span', { class: 'stat-value' }, value),
      extra ? h('span', { class: 'stat-extra' }, extra) : null);
    const oldest = stats.oldest_pending_age_ms;
    fill(body,
      h('section', { 'aria-labelledby': 'h-totals' },
        h('h2', { id: 'h-totals' }, 'All time'),
        h('div', { class: 'stats' },
          card('received', 'Received', fmtInt(t.received), null, 'c-received'),
          card('delivered', 'Delivered', fmtInt(t.delivered), null, 'c-delivered'),
          card('failed', 'Failed', fmtInt(t.failed), t.failed ? h('a', { href: ctx.hrefFor('/requests', { state: 'failed' }) }, 'see failed') : null, 'c-failed'),
          card('retried', 'Retried', fmtInt(t.retried), null, 'c-retried'),
          card('orphaned', 'Orphaned', fmtInt(t.orphaned), 'no or inactive webhook', 'c-muted'),
          card('purged', 'Purged', fmtInt(t.purged), 'by retention', 'c-muted'))),
      h('section', { 'aria-labelledby': 'h-queue' },
        h('h2', { id: 'h-queue' }, 'Queue now'),
        h('div', { class: 'stats' },
          card('pending', 'Pending', fmtInt(stats.pending),
            stats.pending ? h('a', { href: ctx.hrefFor('/requests', { state: 'pending' }) }, 'see pending') : 'nothing waiting', 'c-pending'),
          card('oldest', 'Oldest pending', oldest == null ? '—' : fmtDuration(oldest), oldest == null ? 'no pending request' : 'waiting', 'c-pending'))),
      h('section', { class: 'card', 'aria-labelledby': 'h-days' },
        h('h2', { id: 'h-days' }, `Last ${DAYS} days (UTC)`),
        dayChart(lastDays(stats.days || [])),
        h('details', null, h('summary', null, 'As a table'), dayTable(lastDays(stats.days || [])))),
      h('section', { class: 'card', 'aria-labelledby': 'h-per-webhook' },
        h('h2', { id: 'h-per-webhook' }, 'Per webhook'),
        webhookTable(stats.webhooks || [], ctx)));
    updated.textContent = `updated ${new Date().toLocaleTimeString()} `;
  }
  paint();

  async function refresh(manual) {
    try {
      const s = await api.stats();
      if (!ctx.alive()) return;
      stats = s;
      paint();
    } catch (e) {
      if (manual && ctx.alive()) ctx.notify(`Refresh failed: ${e.message}`, 'error');
    }
  }
  const timer = setInterval(() => {
    if (!document.hidden) refresh(false);
  }, REFRESH_MS);
  return () => clearInterval(timer);
}

// The last DAYS UTC days ending today, zeros where the API has no row.
function lastDays(days) {
  const byDay = new Map(days.map((d) => [d.day, d]));
  const out = [];
  const today = new Date();
  const base = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  let latest = base;
  for (const d of days) {
    const t = Date.parse(`${d.day}T00:00:00Z`);
    if (!Number.isNaN(t) && t > latest) latest = t; // a server clock ahead of ours
  }
  for (let i = DAYS - 1; i >= 0; i--) {
    const day = new Date(latest - i * 86400000).toISOString().slice(0, 10);
    out.push(byDay.get(day) || { day, received: 0, delivered: 0, failed: 0, retried: 0, orphaned: 0 });
  }
  return out;
}

function niceMax(v) {
  if (v <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function dayChart(days) {
  const W = 900;
  const H = 220;
  const left = 44;
  const bottom = 26;
  const top = 10;
  const plotW = W - left - 8;
  const plotH = H - top - bottom;
  const max = niceMax(Math.max(0, ...days.flatMap((d) => SERIES.map(([k]) => d[k] || 0))));
  const slot = plotW / days.length;
  const barW = Math.max(2, (slot - 4) / SERIES.length);
  const y = (v) => top + plotH - (v / max) * plotH;

  const grid = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    grid.push(svg('line', { x1: left, x2: W - 8, y1: y(v), y2: y(v), class: 'grid' }));
    grid.push(svg('text', { x: left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, fmtInt(Math.round(v))));
  }
  const bars = [];
  days.forEach((d, i) => {
    const x0 = left + i * slot + 2;
    SERIES.forEach(([k, label], j) => {
      const v = d[k] || 0;
      const hgt = Math.max(v > 0 ? 1.5 : 0, (v / max) * plotH);
      bars.push(svg('rect', {
        x: x0 + j * barW, y: top + plotH - hgt, width: Math.max(1, barW - 0.5), height: hgt, class: `bar bar-${k}`,
      }, svg('title', null, `${d.day} — ${label}: ${fmtInt(v)}`)));
    });
    if (i % 5 === 4 || i === days.length - 1) {
      bars.push(svg('text', { x: x0 + (slot - 4) / 2, y: H - 8, class: 'axis', 'text-anchor': 'middle' }, d.day.slice(5)));
    }
  });
  const legend = h('ul', { class: 'legend' },
    SERIES.map(([k, label]) => h('li', null, h('span', { class: `swatch bar-${k}`, 'aria-hidden': 'true' }), label)));
  const total = days.reduce((a, d) => a + (d.received || 0), 0);
  return h('figure', { class: 'chart' },
    svg('svg', {
      viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'xMidYMid meet',
      'aria-label': `Requests per day over the last ${days.length} days: ${fmtInt(total)} received in all.`,
    }, grid, bars),
    h('figcaption', null, legend));
}

function dayTable(days) {
  return h('table', { class: 'data compact' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Day'),
      ['Received', 'Delivered', 'Failed', 'Retried', 'Orphaned'].map((c) => h('th', { scope: 'col', class: 'num' }, c)))),
    h('tbody', null, [...days].reverse().map((d) => h('tr', null, h('th', { scope: 'row' }, d.day),
      ['received', 'delivered', 'failed', 'retried', 'orphaned'].map((k) => h('td', { class: 'num' }, fmtInt(d[k])))))));
}

function webhookTable(rows, ctx) {
  if (rows.length === 0) return h('p', { class: 'empty' }, 'No traffic yet.');
  const cols = ['received', 'delivered', 'failed', 'retried', 'orphaned', 'purged', 'pending'];
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data compact' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Webhook'),
      cols.map((c) => h('th', { scope: 'col', class: 'num' }, c[0].toUpperCase() + c.slice(1))))),
    h('tbody', null, rows.map((w) => h('tr', null,
      h('th', { scope: 'row' }, h('a', { href: ctx.hrefFor('/requests', { webhook: w.webhook }), class: 'mono' }, String(w.webhook))),
      cols.map((k) => h('td', { class: ['num', k === 'failed' && w[k] ? 'bad' : null] }, fmtInt(w[k]))))))));
}
