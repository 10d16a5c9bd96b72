// DOM and formatting helpers. Every piece of data reaches the page as text:
// h() appends strings as text nodes and sets attributes with setAttribute, so
// nothing here ever parses HTML (no HTML-string sink anywhere in the UI).

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open', 'indeterminate']);

// h('a', {href: '#/x', class: 'link', onclick: fn}, 'text', child, [more]) -> Element
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function setProps(el, props) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// Replaces all children of el with the given ones.
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// ---------------------------------------------------------------- formatting

const pad = (n, w = 2) => String(n).padStart(w, '0');

// Local time "2026-11-22 05:14:03" (the title attribute carries UTC ISO).
export function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function timeEl(ms) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toISOString() }, fmtTime(ms));
}

// 1234 -> "1.2 s", 95000 -> "1 min 35 s"
export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  const both = (a, ua, b, ub) => (b ? `${a} ${ua} ${b} ${ub}` : `${a} ${ua}`);
  if (m < 60) return both(m, 'min', Math.floor(s % 60), 's');
  const hr = Math.floor(m / 60);
  if (hr < 48) return both(hr, 'h', m % 60, 'min');
  return both(Math.floor(hr / 24), 'd', hr % 24, 'h');
}

export function fmtAgo(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return '—';
  const d = now - ms;
  if (d < 0) return `in ${fmtDuration(-d)}`;
  if (d < 5000) return 'just now';
  return `${fmtDuration(d)} ago`;
}

export function fmtInt(n) {
  return (n ?? 0).toLocaleString('en-US');
}

// datetime-local input value <-> unix ms
export function toLocalInput(ms) {
  if (ms === null || ms === undefined || ms === '' || Number.isNaN(Number(ms))) return '';
  const d = new Date(Number(ms));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(v) {
  if (!v) return '';
  const t = new Date(v).getTime();
  return Number.isNaN(t) ? '' : String(t);
}

export const STATES = ['pending', 'sending', 'delivered', 'failed', 'orphaned'];

export function stateBadge(state) {
  const known = STATES.includes(state) ? state : 'unknown';
  return h('span', { class: ['badge', `state-${known}`] }, String(state));
}

export function statusBadge(status, error) {
  if (status === null || status === undefined) {
    if (error) return h('span', { class: 'badge status-err', title: String(error) }, 'no response');
    return h('span', { class: 'muted' }, '—');
  }
  const cls = status >= 200 && status < 300 ? 'status-ok' : status >= 500 ? 'status-err' : 'status-warn';
  return h('span', { class: ['badge', cls] }, String(status));
}

// ---------------------------------------------------------------- bodies

function base64Bytes(b64) {
  const clean = String(b64).replace(/\s+/g, '');
  const padLen = clean.endsWith('==') ? 2 : clean.endsWith('=') ? 1 : 0;
  return Math.floor(clean.length * 3 / 4) - padLen;
}

function utf8Len(s) {
  return new TextEncoder().encode(s).length;
}

function headerValue(headers, name) {
  if (!Array.isArray(headers)) return '';
  const want = name.toLowerCase();
  for (const pair of headers) {
    if (Array.isArray(pair) && String(pair[0]).toLowerCase() === want) return String(pair[1]);
  }
  return '';
}

// A body shown as text: pretty JSON when it parses as JSON, else the text, or a
// note and the base64 when it is binary.
export function bodyView(text, b64, headers, label = 'Body') {
  const box = h('div', { class: 'body-view' });
  if (text === null || text === undefined) {
    if (b64 === null || b64 === undefined || b64 === '') {
      append(box, [h('p', { class: 'note' }, `${label}: empty`)]);
      return box;
    }
    append(box, [
      h('p', { class: 'note' }, `${label}: binary, ${fmtInt(base64Bytes(b64))} bytes — shown as base64`),
      h('pre', { class: 'code wrap' }, String(b64)),
    ]);
    return box;
  }
  if (text === '') {
    append(box, [h('p', { class: 'note' }, `${label}: empty`)]);
    return box;
  }
  let pretty = null;
  const ctype = headerValue(headers, 'content-type');
  const trimmed = text.trim();
  if (/json/i.test(ctype) || /^[[{]/.test(trimmed)) {
    try {
      pretty = JSON.stringify(JSON.parse(trimmed), null, 2);
    } catch {
      pretty = null;
    }
  }
  const pre = h('pre', { class: 'code' }, pretty ?? text);
  const note = h('p', { class: 'note' }, `${label}: ${fmtInt(utf8Len(text))} bytes`,
    pretty !== null ? ', JSON (pretty-printed)' : ', text');
  if (pretty !== null) {
    let raw = false;
    const toggle = h('button', {
      type: 'button', class: 'link-button', 'aria-pressed': 'false',
      onclick: () => {
        raw = !raw;
        pre.textContent = raw ? text : pretty;
        toggle.textContent = raw ? 'Show pretty' : 'Show raw';
        toggle.setAttribute('aria-pressed', String(raw));
      },
    }, 'Show raw');
    append(note, [' · ', toggle]);
  }
  append(box, [note, pre]);
  return box;
}

export function headersTable(headers, caption = 'Headers') {
  if (!Array.isArray(headers) || headers.length === 0) {
    return h('p', { class: 'note' }, `${caption}: none`);
  }
  return h('table', { class: 'kv' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'))),
    h('tbody', null, headers.map(([name, value]) =>
      h('tr', null, h('th', { scope: 'row' }, String(name)), h('td', null, String(value))))));
}

// ---------------------------------------------------------------- dialogs

let dialogSeq = 0;

// A modal dialog with a confirm and a cancel button. Returns handles; .result
// resolves to true (confirmed) or false (cancelled, Escape). The caller may
// change .body and .ok (e.g. after counting) while it is open.
export function modal({ title, content, confirm = 'OK', cancel = 'Cancel', danger = false }) {
  const id = `dlg-${++dialogSeq}`;
  const opener = document.activeElement;
  const body = h('div', { class: 'modal-body', id: `${id}-body` }, content);
  const ok = h('button', { type: 'button', class: danger ? 'danger' : null }, confirm);
  const no = h('button', { type: 'button', class: 'secondary' }, cancel);
  const dialog = h('dialog', { class: 'modal', 'aria-labelledby': `${id}-title`, 'aria-describedby': `${id}-body` },
    h('h2', { id: `${id}-title` }, title), body, h('div', { class: 'actions' }, no, ok));
  let settle;
  const result = new Promise((resolve) => { settle = resolve; });
  ok.addEventListener('click', () => { settle(true); dialog.close(); });
  no.addEventListener('click', () => { settle(false); dialog.close(); });
  dialog.addEventListener('close', () => {
    settle(false);
    dialog.remove();
    if (opener && typeof opener.focus === 'function' && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  no.focus();
  return { dialog, body, ok, cancel: no, result, close: () => dialog.close() };
}

// Shows an API error next to a form field when the API named one; with a
// null error, clears the previous ones.
export function fieldError(form, err) {
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) {
    el.removeAttribute('aria-invalid');
    if (el.dataset.describedby !== undefined) {
      if (el.dataset.describedby) el.setAttribute('aria-describedby', el.dataset.describedby);
      else el.removeAttribute('aria-describedby');
    }
  }
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  if (!err || !err.field) return null;
  const input = form.querySelector(`[name="${CSS.escape(err.field)}"]`);
  if (!input) return null;
  const orig = input.getAttribute('aria-describedby') || '';
  input.dataset.describedby = orig;
  input.setAttribute('aria-invalid', 'true');
  const msg = h('p', { class: 'field-error', id: `${input.id || input.name}-error` }, err.message);
  input.setAttribute('aria-describedby', `${orig} ${msg.id}`.trim());
  const holder = input.closest('.field');
  if (holder) holder.append(msg);
  else input.after(msg);
  input.focus();
  return input;
}
