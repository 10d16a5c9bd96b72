// Requests: filtered, keyset-paginated list, auto-refresh, bulk resend.
import { api } from '../api.js';
import {
  h, fill, timeEl, fmtInt, fmtAgo, stateBadge, statusBadge, STATES,
  toLocalInput, fromLocalInput, modal,
} from '../lib.js';

const FILTERS = ['webhook', 'state', 'from', 'to', 'status', 'q'];
const PAGE = 50;
const REFRESH_MS = 5000;
const COUNT_PAGE = 500;
const COUNT_MAX_PAGES = 20; // counts up to 10,000 before saying "10,000+"
const AUTO_KEY = 'soldr.autoRefresh';

// Cursors of the pages before the current one, per filter, so "← Newer" can
// go back (the API pages only towards older requests).
const trails = new Map();

function filterOf(params) {
  const f = {};
  for (const k of FILTERS) {
    const v = params.get(k);
    if (v !== null && v !== '') f[k] = v;
  }
  return f;
}

function filterKey(f) {
  return FILTERS.map((k) => `${k}=${f[k] ?? ''}`).join('&');
}

// The filter as the bulk-resend body wants it (JSON types).
function bulkBody(f) {
  const b = {};
  for (const k of FILTERS) {
    if (f[k] === undefined) continue;
    b[k] = ['from', 'to', 'status'].includes(k) ? Number(f[k]) : f[k];
  }
  if (Object.keys(b).length === 0) b.all = true;
  return b;
}

function describeFilter(f) {
  const parts = [];
  if (f.webhook) parts.push(`webhook ${f.webhook}`);
  if (f.state) parts.push(`state ${f.state}`);
  if (f.from) parts.push(`received from ${new Date(Number(f.from)).toLocaleString()}`);
  if (f.to) parts.push(`received before ${new Date(Number(f.to)).toLocaleString()}`);
  if (f.status) parts.push(`last status ${f.status}`);
  if (f.q) parts.push(`target containing “${f.q}”`);
  return parts;
}

export async function requestsView(root, ctx) {
  const filter = filterOf(ctx.params);
  const cursor = ctx.params.get('cursor') || '';
  const key = filterKey(filter);
  const stack = trails.get(key) || [];
  trails.set(key, stack);
  // Coming back to the first page (or from a bookmark) forgets the trail.
  if (!cursor) stack.length = 0;

  document.title = 'Requests · soldr';
  sessionStorage.setItem('soldr.lastList', location.hash || '#/requests');

  const [webhooks, page] = await Promise.all([
    api.webhooks().catch(() => []),
    api.requests({ ...filter, cursor, limit: PAGE }),
  ]);
  if (!ctx.alive()) return;

  // ------------------------------------------------------------ filter form
  const ids = webhooks.map((w) => w.id);
  if (filter.webhook && !ids.includes(filter.webhook)) ids.push(filter.webhook);
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const fWebhook = h('select', { id: 'f-webhook', name: 'webhook' },
    h('option', { value: '' }, 'All webhooks'),
    ids.map((id) => h('option', { value: id, selected: id === filter.webhook }, id)));
  const fState = h('select', { id: 'f-state', name: 'state' },
    h('option', { value: '' }, 'Any state'),
    STATES.map((s) => h('option', { value: s, selected: s === filter.state }, s)));
  const fFrom = h('input', { id: 'f-from', name: 'from', type: 'datetime-local', value: toLocalInput(filter.from) });
  const fTo = h('input', { id: 'f-to', name: 'to', type: 'datetime-local', value: toLocalInput(filter.to) });
  const fStatus = h('input', {
    id: 'f-status', name: 'status', type: 'number', min: 100, max: 599, inputmode: 'numeric',
    placeholder: 'e.g. 500', value: filter.status || '', class: 'narrow',
  });
  const fQ = h('input', { id: 'f-q', name: 'q', type: 'search', placeholder: '/path or ?query', value: filter.q || '' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter requests' },
    field('f-webhook', 'Webhook', fWebhook),
    field('f-state', 'State', fState),
    field('f-from', 'Received from', fFrom),
    field('f-to', 'Received before', fTo),
    field('f-status', 'Last status', fStatus),
    field('f-q', 'Target contains', fQ),
    h('div', { class: 'field buttons' },
      h('button', { type: 'submit' }, 'Apply'),
      h('button', {
        type: 'button', class: 'secondary',
        onclick: () => ctx.navigate('/requests', {}),
      }, 'Reset')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.navigate('/requests', {
      webhook: fWebhook.value, state: fState.value,
      from: fromLocalInput(fFrom.value), to: fromLocalInput(fTo.value),
      status: fStatus.value.trim(), q: fQ.value,
    });
  });
  // Selects apply at once; text and dates on Apply (or Enter).
  for (const sel of [fWebhook, fState]) sel.addEventListener('change', () => form.requestSubmit());

  // ------------------------------------------------------------ toolbar
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh', checked: sessionStorage.getItem(AUTO_KEY) === '1' });
  const refreshed = h('span', { class: 'muted small', 'aria-live': 'off' });
  const resendAll = h('button', { type: 'button', class: 'secondary', id: 'bulk-resend' }, 'Resend matching…');
  const toolbar = h('div', { class: 'toolbar' },
    h('div', { class: 'toolbar-left' }, h('span', { class: 'summary' }), refreshed),
    h('div', { class: 'toolbar-right' },
      h('label', { class: 'check', for: 'auto-refresh' }, auto, ' Auto-refresh (5 s)'),
      h('button', { type: 'button', class: 'secondary', onclick: () => reload(true) }, 'Refresh'),
      resendAll));

  const tableWrap = h('div', { class: 'table-wrap' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });

  const active = describeFilter(filter);
  fill(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Requests')),
    form,
    toolbar,
    tableWrap,
    pager);

  let current = page;
  let shown = '';
  function paint() {
    const snapshot = JSON.stringify(current);
    refreshed.textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (snapshot === shown) return; // nothing new: leave the table (and the focus) alone
    shown = snapshot;
    const focused = document.activeElement?.closest?.('tr[data-id]')?.dataset.id;
    const rows = current.requests || [];
    const summary = toolbar.querySelector('.summary');
    const where = active.length ? ` matching ${active.join(', ')}` : '';
    summary.textContent = rows.length === 0
      ? `No requests${where}.`
      : `${cursor ? 'Older' : 'Newest'} ${fmtInt(rows.length)} request${rows.length === 1 ? '' : 's'}${where}`;
    if (rows.length === 0) {
      fill(tableWrap, h('p', { class: 'empty' },
        cursor ? 'No older requests.' : active.length ? 'No requests match these filters.' : 'No requests stored yet.'));
    } else {
      fill(tableWrap, requestsTable(rows));
      if (focused) tableWrap.querySelector(`tr[data-id="${CSS.escape(focused)}"] a`)?.focus();
    }
    fill(pager,
      h('a', { id: 'page-newest', class: ['button', 'secondary', !cursor && 'disabled'], href: ctx.hrefFor('/requests', filter), 'aria-disabled': !cursor ? 'true' : null }, '⇤ Newest'),
      stack.length > 0
        ? h('a', {
          id: 'page-newer', class: 'button secondary', href: ctx.hrefFor('/requests', { ...filter, cursor: stack[stack.length - 1] }),
          onclick: (ev) => {
            ev.preventDefault();
            const prev = stack.pop();
            ctx.navigate('/requests', { ...filter, cursor: prev });
          },
        }, '← Newer')
        : null,
      current.next_cursor
        ? h('a', {
          id: 'page-older', class: 'button secondary', rel: 'next', href: ctx.hrefFor('/requests', { ...filter, cursor: current.next_cursor }),
          onclick: (ev) => {
            ev.preventDefault();
            stack.push(cursor);
            ctx.navigate('/requests', { ...filter, cursor: current.next_cursor });
          },
        }, 'Older →')
        : h('span', { class: 'muted small' }, rows.length ? 'No older requests.' : ''));
  }
  paint();

  // ------------------------------------------------------------ refresh
  let timer = null;
  let busy = false;
  async function reload(manual) {
    if (busy) return;
    busy = true;
    try {
      const next = await api.requests({ ...filter, cursor, limit: PAGE });
      if (!ctx.alive()) return;
      current = next;
      paint();
    } catch (e) {
      if (ctx.alive() && manual) ctx.notify(`Refresh failed: ${e.message}`, 'error');
      else if (ctx.alive()) refreshed.textContent = `refresh failed: ${e.message}`;
    } finally {
      busy = false;
    }
  }
  function schedule() {
    clearInterval(timer);
    timer = null;
    if (auto.checked) {
      timer = setInterval(() => {
        if (!document.hidden) reload(false);
      }, REFRESH_MS);
    }
  }
  auto.addEventListener('change', () => {
    sessionStorage.setItem(AUTO_KEY, auto.checked ? '1' : '0');
    schedule();
  });
  schedule();

  resendAll.addEventListener('click', () => bulkResend(filter, ctx, () => reload(false)));

  return () => clearInterval(timer);
}

function requestsTable(rows) {
  return h('table', { class: 'data requests' },
    h('caption', { class: 'visually-hidden' }, 'Requests, newest first'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, 'Received'),
      h('th', { scope: 'col' }, 'Webhook'),
      h('th', { scope: 'col' }, 'Request'),
      h('th', { scope: 'col', class: 'num' }, 'Attempts'),
      h('th', { scope: 'col' }, 'Last status'))),
    h('tbody', null, rows.map((r) => {
      const href = `#/requests/${encodeURIComponent(r.id)}`;
      const next = r.state === 'pending' && r.next_attempt_at ? `next attempt ${fmtAgo(r.next_attempt_at)}` : null;
      return h('tr', { 'data-id': r.id, 'data-state': r.state },
        h('td', null, stateBadge(r.state), next ? h('span', { class: 'sub' }, next) : null),
        h('td', { class: 'nowrap' }, timeEl(r.received_at)),
        h('td', null, h('span', { class: 'mono' }, String(r.webhook ?? ''))),
        h('td', { class: 'target' },
          h('a', { href, class: 'request-link' },
            h('span', { class: 'method' }, String(r.method ?? '')), ' ',
            h('span', { class: 'mono' }, String(r.target ?? ''))),
          r.edited ? h('span', { class: 'badge edited', title: 'Edited: the edited version is delivered' }, 'edited') : null),
        h('td', { class: 'num' }, String(r.attempts ?? 0)),
        h('td', null, r.attempts ? statusBadge(r.last_status, r.last_status == null ? 'network error' : null) : h('span', { class: 'muted' }, '—')));
    })));
}

// Counts what the filter matches (pages of 500, up to a limit), asks, resends.
async function bulkResend(filter, ctx, after) {
  const parts = describeFilter(filter);
  const status = h('p', null, 'Counting the matching requests…');
  const dlg = modal({
    title: 'Resend requests',
    content: [status],
    confirm: 'Resend',
  });
  dlg.ok.disabled = true;
  let cancelled = false;
  dlg.result.then((ok) => { if (!ok) cancelled = true; });

  let count = 0;
  let more = false;
  try {
    let cursor = '';
    for (let i = 0; i < COUNT_MAX_PAGES; i++) {
      const page = await api.requests({ ...filter, cursor, limit: COUNT_PAGE });
      if (cancelled) return;
      count += (page.requests || []).length;
      cursor = page.next_cursor;
      if (!cursor) break;
      if (i === COUNT_MAX_PAGES - 1) more = true;
    }
  } catch (e) {
    if (cancelled) return;
    fill(dlg.body, h('p', { class: 'error', role: 'alert' }, `Could not count: ${e.message}`));
    return;
  }
  const shown = `${fmtInt(count)}${more ? '+' : ''}`;
  if (count === 0) {
    fill(dlg.body, h('p', null, 'No request matches this filter: nothing to resend.'));
    dlg.ok.hidden = true;
    dlg.cancel.textContent = 'Close';
    return;
  }
  fill(dlg.body,
    h('p', { class: 'count-line' }, h('strong', { class: 'count' }, shown),
      ` request${count === 1 && !more ? '' : 's'} `,
      parts.length ? 'match ' : '', parts.length ? parts.join(', ') : 'stored in all: no filter is set.'),
    h('p', null, 'They will be delivered now, bypassing the backoff. Requests being delivered at this moment are skipped by soldr.'),
    parts.length ? null : h('p', { class: 'warn' }, 'This resends every stored request.'));
  dlg.ok.textContent = `Resend ${shown}`;
  dlg.ok.disabled = false;
  if (!(await dlg.result)) return;
  try {
    const r = await api.bulkResend(bulkBody(filter));
    ctx.notify(`Resent ${fmtInt(r.resent)} request${r.resent === 1 ? '' : 's'}.`, 'success');
    after();
  } catch (e) {
    ctx.notify(`Bulk resend failed: ${e.message}`, 'error');
  }
}
