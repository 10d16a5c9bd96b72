// One request: as received, as edited, its attempts; edit and resend.
import { api, ApiError } from '../api.js';
import {
  h, fill, timeEl, fmtDuration, fmtAgo, stateBadge, statusBadge, bodyView, headersTable, fieldError,
} from '../lib.js';

const POLL_MS = 600;
const RESEND_WAIT_MS = 60000;
const LIVE_REFRESH_MS = 5000;

export async function requestView(root, ctx) {
  const id = ctx.match[0];
  let data = await api.request(id);
  if (!ctx.alive()) return;

  const title = h('h1', { class: 'request-title' });
  const meta = h('dl', { class: 'meta' });
  const sections = h('div', { class: 'sections' });
  const live = h('p', { class: 'resend-status', id: 'resend-status', role: 'status', 'aria-live': 'polite' });
  const editBtn = h('button', { type: 'button', id: 'edit-button', 'aria-expanded': 'false', 'aria-controls': 'edit-form' }, 'Edit');
  const resendBtn = h('button', { type: 'button', id: 'resend-button' }, 'Resend now');
  const editHost = h('div', { class: 'edit-host' });

  fill(root,
    h('p', { class: 'crumbs' }, h('a', { href: sessionStorage.getItem('soldr.lastList') || '#/requests' }, '← Requests')),
    title,
    meta,
    h('div', { class: 'actions request-actions' }, editBtn, resendBtn, live),
    editHost,
    sections);

  function paint() {
    const r = data.request;
    const attempts = data.attempts || [];
    document.title = `${r.method} ${r.target} · soldr`;
    fill(title, stateBadge(r.state), ' ', h('span', { class: 'method' }, String(r.method)), ' ',
      h('span', { class: 'mono' }, String(r.target)));
    const row = (k, ...v) => [h('dt', null, k), h('dd', null, ...v)];
    fill(meta,
      row('Id', h('span', { class: 'mono', id: 'request-id' }, String(r.id))),
      row('Webhook', h('a', { href: ctx.hrefFor('/requests', { webhook: r.webhook }), class: 'mono' }, String(r.webhook)),
        ' ', h('a', { href: `#/webhooks/${encodeURIComponent(r.webhook)}`, class: 'small' }, '(settings)')),
      row('State', stateBadge(r.state)),
      row('Received', timeEl(r.received_at), h('span', { class: 'muted' }, ` (${fmtAgo(r.received_at)})`)),
      row('From', h('span', { class: 'mono' }, r.peer == null ? '—' : String(r.peer))),
      row('Attempts', String(attempts.length)),
      r.state === 'pending' && r.next_attempt_at != null
        ? row('Next attempt', timeEl(r.next_attempt_at), h('span', { class: 'muted' }, ` (${fmtAgo(r.next_attempt_at)})`))
        : null,
      r.edited ? row('Edited', timeEl(r.edited.edited_at)) : null);

    const received = h('section', { class: 'card', 'aria-labelledby': 'h-received' },
      h('h2', { id: 'h-received' }, 'As received'),
      requestLine(r.method, r.target),
      h('h3', null, 'Headers'),
      headersTable(r.headers, 'Headers as received'),
      h('h3', null, 'Body'),
      bodyView(r.body, r.body_b64, r.headers));
    received.dataset.version = 'received';

    let edited = null;
    if (r.edited) {
      const e = r.edited;
      edited = h('section', { class: 'card edited-card', 'aria-labelledby': 'h-edited', 'data-version': 'edited' },
        h('h2', { id: 'h-edited' }, 'Edited version ', h('span', { class: 'badge edited' }, 'delivered from now on')),
        h('p', { class: 'muted small' }, 'Edited ', timeEl(e.edited_at)),
        requestLine(e.method, e.target),
        h('h3', null, 'Headers'),
        headersTable(e.headers, 'Edited headers'),
        h('h3', null, 'Body'),
        bodyView(e.body, e.body_b64, e.headers));
    }

    const attemptList = attempts.length === 0
      ? h('p', { class: 'empty' }, 'No attempt yet.')
      : h('ol', { class: 'attempts', reversed: true },
        [...attempts].reverse().map((a, i) => attemptItem(a, attempts.length - i)));
    const attemptsSection = h('section', { class: 'card', 'aria-labelledby': 'h-attempts' },
      h('h2', { id: 'h-attempts' }, `Attempts (${attempts.length})`, h('span', { class: 'muted small' }, ' newest first')),
      attemptList);

    fill(sections, edited, received, attemptsSection);
    resendBtn.disabled = r.state === 'sending';
    resendBtn.title = r.state === 'sending' ? 'A delivery is in flight' : '';
  }
  paint();

  // ------------------------------------------------------------ edit
  let form = null;
  function closeEdit() {
    if (form) form.remove();
    form = null;
    editBtn.setAttribute('aria-expanded', 'false');
    editBtn.textContent = 'Edit';
  }
  editBtn.addEventListener('click', () => {
    if (form) {
      closeEdit();
      editBtn.focus();
      return;
    }
    form = editForm(data.request, async (changes, errorOut) => {
      try {
        data = await api.editRequest(id, changes);
        // The answer has the request; keep the attempts we had if it does not.
        if (!data.attempts) data = await api.request(id);
        if (!ctx.alive()) return;
        paint();
        closeEdit();
        ctx.notify('Saved. The edited version is what soldr delivers from now on.', 'success');
        editBtn.focus();
      } catch (e) {
        if (e instanceof ApiError && fieldError(form, e)) {
          errorOut.textContent = e.message;
        } else {
          errorOut.textContent = `Could not save: ${e.message}`;
        }
      }
    }, () => {
      closeEdit();
      editBtn.focus();
    });
    editHost.append(form);
    editBtn.setAttribute('aria-expanded', 'true');
    editBtn.textContent = 'Close editor';
    form.querySelector('input, textarea').focus();
  });

  // ------------------------------------------------------------ resend
  let polling = null;
  let resending = false;
  resendBtn.addEventListener('click', async () => {
    resendBtn.disabled = true;
    resending = true;
    live.className = 'resend-status';
    live.textContent = 'Asking soldr to resend…';
    try {
      const fresh = await api.request(id);
      const known = new Set((fresh.attempts || []).map((a) => a.id));
      await api.resend(id);
      if (!ctx.alive()) return;
      live.textContent = 'Resend requested — waiting for the delivery…';
      const started = Date.now();
      await new Promise((resolve) => {
        const tick = async () => {
          if (!ctx.alive()) return resolve();
          try {
            const d = await api.request(id);
            if (!ctx.alive()) return resolve();
            data = d;
            const mine = (d.attempts || []).find((a) => a.manual && !known.has(a.id));
            if (mine) {
              paint();
              showOutcome(mine);
              return resolve();
            }
          } catch (e) {
            live.textContent = `Waiting for the delivery… (${e.message})`;
          }
          if (Date.now() - started > RESEND_WAIT_MS) {
            paint();
            live.className = 'resend-status warn';
            live.textContent = 'No new attempt recorded within a minute; refresh later to see it.';
            return resolve();
          }
          polling = setTimeout(tick, POLL_MS);
        };
        polling = setTimeout(tick, POLL_MS);
      });
    } catch (e) {
      if (!ctx.alive()) return;
      live.className = 'resend-status error';
      live.textContent = e instanceof ApiError && e.status === 409
        ? 'A delivery of this request is in flight right now; try again when it has finished.'
        : `Resend failed: ${e.message}`;
    } finally {
      resending = false;
      if (ctx.alive()) resendBtn.disabled = data.request.state === 'sending';
    }
  });

  function showOutcome(a) {
    const ok = a.status != null && a.status >= 200 && a.status < 300;
    live.className = `resend-status ${ok ? 'success' : 'error'}`;
    live.textContent = ok
      ? `Resent: delivered, HTTP ${a.status} in ${fmtDuration(a.duration_ms)}.`
      : a.status != null
        ? `Resent, but the destination answered HTTP ${a.status}.`
        : `Resent, but the delivery failed: ${a.error ?? 'no response'}.`;
  }

  // ------------------------------------------------------------ live state
  // While soldr still works on it, keep the page current (not while editing).
  const liveTimer = setInterval(async () => {
    const st = data.request.state;
    if (document.hidden || form || resending || !(st === 'pending' || st === 'sending')) return;
    try {
      const d = await api.request(id);
      if (!ctx.alive() || form || JSON.stringify(d) === JSON.stringify(data)) return;
      data = d;
      paint();
    } catch {
      /* shown on the next user action */
    }
  }, LIVE_REFRESH_MS);

  return () => {
    clearTimeout(polling);
    clearInterval(liveTimer);
  };
}

function requestLine(method, target) {
  return h('p', { class: 'request-line' },
    h('span', { class: 'method' }, String(method)), ' ', h('span', { class: 'mono' }, String(target)));
}

function attemptItem(a, n) {
  const ok = a.status != null && a.status >= 200 && a.status < 300;
  const head = h('div', { class: 'attempt-head' },
    h('span', { class: 'attempt-n' }, `#${n}`),
    statusBadge(a.status, a.error),
    a.manual ? h('span', { class: 'badge manual' }, 'manual') : null,
    timeEl(a.started_at),
    h('span', { class: 'muted' }, a.duration_ms != null ? fmtDuration(a.duration_ms) : ''));
  const hasResponse = a.response_body != null || a.response_body_b64 != null || a.response_headers;
  return h('li', { class: ['attempt', ok ? 'ok' : 'bad'], 'data-manual': a.manual ? 'true' : 'false', 'data-status': a.status ?? '' },
    head,
    a.error != null ? h('p', { class: 'attempt-error' }, 'Error: ', h('span', { class: 'mono' }, String(a.error))) : null,
    hasResponse
      ? h('details', { class: 'response' },
        h('summary', null, 'Response'),
        a.response_headers ? [h('h4', null, 'Headers'), h('pre', { class: 'code' }, String(a.response_headers).replace(/\r\n/g, '\n').trimEnd())] : null,
        h('h4', null, 'Body'),
        bodyView(a.response_body, a.response_body_b64, null, 'Response body'))
      : null);
}

// ---------------------------------------------------------------- edit form

function headersToText(headers) {
  return (headers || []).map(([n, v]) => `${n}: ${v}`).join('\n');
}

function textToHeaders(text) {
  const out = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const c = line.indexOf(':');
    if (c <= 0) throw new Error(`Headers, line ${i + 1}: expected “Name: value”.`);
    const name = line.slice(0, c).trim();
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new Error(`Headers, line ${i + 1}: “${name}” is not a valid header name.`);
    out.push([name, line.slice(c + 1).trim()]);
  }
  return out;
}

function sameHeaders(a, b) {
  return JSON.stringify(a || []) === JSON.stringify(b || []);
}

function editForm(r, save, cancel) {
  const cur = r.edited || r;
  const binary = cur.body == null && cur.body_b64 != null && cur.body_b64 !== '';
  const method = h('input', { id: 'edit-method', name: 'method', value: cur.method, required: true, spellcheck: 'false', class: 'narrow', autocomplete: 'off' });
  const target = h('input', { id: 'edit-target', name: 'target', value: cur.target, required: true, spellcheck: 'false', autocomplete: 'off' });
  const headers = h('textarea', {
    id: 'edit-headers', name: 'headers', rows: Math.min(14, Math.max(4, (cur.headers || []).length + 1)),
    spellcheck: 'false', 'aria-describedby': 'edit-headers-help', class: 'mono',
  });
  headers.value = headersToText(cur.headers);
  const body = h('textarea', { id: 'edit-body', name: 'body', rows: 12, spellcheck: 'false', class: 'mono' });
  body.value = binary ? cur.body_b64 : (cur.body ?? '');
  const isB64 = h('input', { type: 'checkbox', id: 'edit-b64', name: 'body_b64', checked: binary });
  const error = h('p', { class: 'error', role: 'alert' });
  const saveBtn = h('button', { type: 'submit' }, 'Save edit');
  const f = h('form', { class: 'card edit-form', id: 'edit-form', 'aria-labelledby': 'h-edit', novalidate: true },
    h('h2', { id: 'h-edit' }, r.edited ? 'Edit (changes the edited version)' : 'Edit (the original stays as received)'),
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: 'edit-method' }, 'Method'), method),
      h('div', { class: 'field grow' }, h('label', { for: 'edit-target' }, 'Target (path and query)'), target)),
    h('div', { class: 'field' },
      h('label', { for: 'edit-headers' }, 'Headers'),
      headers,
      h('p', { class: 'help', id: 'edit-headers-help' }, 'One “Name: value” per line, in order.')),
    h('div', { class: 'field' },
      h('label', { for: 'edit-body' }, 'Body'),
      body,
      /\r/.test(cur.body ?? '') ? h('p', { class: 'help' }, 'This body has CR LF line breaks; an edited body is saved with LF.') : null,
      h('label', { class: 'check', for: 'edit-b64' }, isB64, ' The body above is base64 (binary)')),
    error,
    h('div', { class: 'actions' },
      saveBtn,
      h('button', { type: 'button', class: 'secondary', onclick: cancel }, 'Cancel')));
  f.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      cancel();
    }
  });
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    fieldError(f, null);
    const changes = {};
    const m = method.value.trim();
    const t = target.value.trim();
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(m)) {
      error.textContent = 'The method must be a token such as POST.';
      method.focus();
      return;
    }
    if (!t.startsWith('/')) {
      error.textContent = 'The target must start with “/”.';
      target.focus();
      return;
    }
    let hdrs;
    try {
      hdrs = textToHeaders(headers.value);
    } catch (e) {
      error.textContent = e.message;
      headers.focus();
      return;
    }
    if (m !== cur.method) changes.method = m;
    if (t !== cur.target) changes.target = t;
    if (!sameHeaders(hdrs, cur.headers)) changes.headers = hdrs;
    if (isB64.checked) {
      const v = body.value.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
        error.textContent = 'The body is marked as base64 but is not valid base64.';
        body.focus();
        return;
      }
      if (v !== (cur.body_b64 ?? '') || !binary) changes.body_b64 = v;
    } else if (body.value !== (cur.body ?? '').replace(/\r\n?/g, '\n') || binary) {
      changes.body = body.value;
    }
    if (Object.keys(changes).length === 0) {
      error.textContent = 'Nothing changed.';
      return;
    }
    saveBtn.disabled = true;
    saveBtn.textContent = 'Saving…';
    try {
      await save(changes, error);
    } finally {
      saveBtn.disabled = false;
      saveBtn.textContent = 'Save edit';
    }
  });
  return f;
}
