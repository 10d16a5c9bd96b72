// Webhooks: list, create, edit every setting, activate/deactivate, delete.
import { api, ApiError } from '../api.js';
import { h, fill, timeEl, fmtDuration, modal, fieldError } from '../lib.js';

export async function webhooksView(root, ctx) {
  document.title = 'Webhooks · soldr';
  const list = await api.webhooks();
  if (!ctx.alive()) return;

  const tableWrap = h('div', { class: 'table-wrap' });
  fill(root,
    h('div', { class: 'page-head' },
      h('h1', null, 'Webhooks'),
      h('a', { class: 'button', href: '#/webhooks/new', id: 'new-webhook' }, '+ New webhook')),
    tableWrap);

  let rows = list;
  function paint() {
    if (rows.length === 0) {
      fill(tableWrap, h('p', { class: 'empty' }, 'No webhook yet. ', h('a', { href: '#/webhooks/new' }, 'Create the first one.')));
      return;
    }
    fill(tableWrap, h('table', { class: 'data webhooks' },
      h('caption', { class: 'visually-hidden' }, 'Webhooks'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Id'),
        h('th', { scope: 'col' }, 'Destination'),
        h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col' }, 'Alert'),
        h('th', { scope: 'col' }, 'Delivery'),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', null, rows.map((w) => row(w)))));
  }

  function row(w) {
    const toggle = h('button', {
      type: 'button', class: 'secondary small-button', 'aria-label': `${w.active ? 'Deactivate' : 'Activate'} ${w.id}`,
    }, w.active ? 'Deactivate' : 'Activate');
    toggle.addEventListener('click', async () => {
      toggle.disabled = true;
      try {
        const upd = await api.patchWebhook(w.id, { active: !w.active });
        rows = rows.map((x) => (x.id === w.id ? upd : x));
        paint();
        ctx.notify(`${upd.id} is now ${upd.active ? 'active' : 'inactive'}.`, 'success');
        tableWrap.querySelector(`tr[data-id="${CSS.escape(w.id)}"] button`)?.focus();
      } catch (e) {
        toggle.disabled = false;
        ctx.notify(`Could not change ${w.id}: ${e.message}`, 'error');
      }
    });
    const del = h('button', { type: 'button', class: 'danger-outline small-button', 'aria-label': `Delete ${w.id}` }, 'Delete');
    del.addEventListener('click', async () => {
      const dlg = modal({
        title: `Delete webhook ${w.id}?`,
        content: [
          h('p', null, 'Its stored requests stay, but new requests for ', h('span', { class: 'mono' }, String(w.id)),
            ' will be orphaned (stored, not delivered).'),
        ],
        confirm: 'Delete',
        danger: true,
      });
      if (!(await dlg.result)) return;
      try {
        await api.deleteWebhook(w.id);
        rows = rows.filter((x) => x.id !== w.id);
        paint();
        ctx.notify(`Deleted ${w.id}.`, 'success');
        document.getElementById('new-webhook')?.focus();
      } catch (e) {
        ctx.notify(`Could not delete ${w.id}: ${e.message}`, 'error');
      }
    });
    return h('tr', { 'data-id': w.id },
      h('th', { scope: 'row' }, h('a', { href: `#/webhooks/${encodeURIComponent(w.id)}`, class: 'mono' }, String(w.id)),
        h('a', { href: ctx.hrefFor('/requests', { webhook: w.id }), class: 'id-sub', 'aria-label': `Requests of ${w.id}` }, 'requests →')),
      h('td', { class: 'dest mono' }, String(w.destination)),
      h('td', null, w.active ? h('span', { class: 'badge active' }, 'active') : h('span', { class: 'badge inactive' }, 'inactive'),
        w.signing_secret_set ? h('span', { class: 'badge signed', title: 'Deliveries are signed' }, 'signed') : null),
      h('td', null, alertCell(w)),
      h('td', { class: 'small delivery' },
        `${w.max_attempts} attempt${w.max_attempts === 1 ? '' : 's'} · timeout ${fmtDuration(w.timeout_ms)}`, h('br'),
        h('span', { class: 'muted' }, `backoff ${fmtDuration(w.backoff_base_ms)} → ${fmtDuration(w.backoff_cap_ms)} · ${w.max_concurrency} in parallel`)),
      h('td', null, h('div', { class: 'row-actions' },
        h('a', { href: `#/webhooks/${encodeURIComponent(w.id)}`, class: 'button secondary small-button', 'aria-label': `Edit ${w.id}` }, 'Edit'),
        toggle, del)));
  }

  paint();
}

function alertCell(w) {
  const target = [w.alert_email, w.alert_url].filter(Boolean).join(', ');
  if (w.alerted) {
    return [h('span', { class: 'badge alerted' }, 'alerted'), ' ', w.alerted_at != null ? timeEl(w.alerted_at) : null];
  }
  if (!target) return h('span', { class: 'muted small' }, 'no alert set');
  return h('span', { class: 'small' }, 'ok · ', h('span', { class: 'mono' }, target));
}

// ---------------------------------------------------------------- form

const NUMBERS = [
  ['max_attempts', 'Max attempts', 'Deliveries tried before the request is failed.', 1],
  ['timeout_ms', 'Timeout (ms)', 'Per attempt.', 1],
  ['backoff_base_ms', 'Backoff base (ms)', 'Wait after the first failure; doubles each time.', 0],
  ['backoff_cap_ms', 'Backoff cap (ms)', 'Longest wait between two attempts.', 0],
  ['max_concurrency', 'Max concurrency', 'Deliveries in flight at once for this webhook.', 1],
];

export async function webhookFormView(root, ctx) {
  const editing = ctx.match.length > 0 && ctx.match[0] !== undefined;
  const id = editing ? ctx.match[0] : null;
  const w = editing ? await api.webhook(id) : null;
  if (!ctx.alive()) return;
  document.title = `${editing ? `Webhook ${id}` : 'New webhook'} · soldr`;

  const inputs = {};
  const field = (name, label, input, help) => {
    inputs[name] = input;
    input.id = input.id || `wh-${name}`;
    input.name = name;
    if (help) input.setAttribute('aria-describedby', `wh-${name}-help`);
    return h('div', { class: 'field' },
      h('label', { for: input.id }, label), input,
      help ? h('p', { class: 'help', id: `wh-${name}-help` }, help) : null);
  };

  const idInput = h('input', {
    type: 'text', required: true, pattern: '[a-z0-9-]{1,63}', maxlength: 63, spellcheck: 'false',
    autocomplete: 'off', value: w ? w.id : '', disabled: editing, class: 'mono',
  });
  const destInput = h('input', { type: 'url', required: true, value: w ? w.destination : '', spellcheck: 'false', placeholder: 'https://example.org/hook' });
  const active = h('input', { type: 'checkbox', id: 'wh-active', name: 'active', checked: w ? w.active : true });
  inputs.active = active;
  const secretInput = h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false', placeholder: 'whsec_…' });
  const removeSecret = h('input', { type: 'checkbox', id: 'wh-remove-secret' });
  const error = h('p', { class: 'error', role: 'alert' });
  const saveBtn = h('button', { type: 'submit' }, editing ? 'Save changes' : 'Create webhook');

  const numberFields = NUMBERS.map(([name, label, help, min]) => field(name, label,
    h('input', { type: 'number', min, step: 1, inputmode: 'numeric', value: w ? w[name] : '', placeholder: editing ? '' : 'default', class: 'narrow' }),
    help));

  const form = h('form', { class: 'card webhook-form', novalidate: true, 'aria-labelledby': 'wh-title' },
    h('fieldset', null,
      h('legend', null, 'Route'),
      field('id', 'Id (label)', idInput,
        editing ? 'The id cannot change.' : 'Requests to <id>.<SOLDR_DOMAIN> go to this webhook: lowercase letters, digits and “-”, at most 63.'),
      field('destination', 'Destination URL', destInput, 'http:// or https://, where soldr forwards the requests.'),
      h('div', { class: 'field' },
        h('label', { class: 'check', for: 'wh-active' }, active, ' Active (deliver requests)'),
        h('p', { class: 'help' }, 'While inactive, its requests are still stored but not delivered: they become orphaned (resend them later).'))),
    h('fieldset', null,
      h('legend', null, 'Delivery'),
      h('div', { class: 'grid' }, numberFields)),
    h('fieldset', null,
      h('legend', null, 'Signing'),
      w && w.signing_secret_set ? h('p', { class: 'note' }, 'A signing secret is set (it is never shown).') : h('p', { class: 'note' }, 'No signing secret: deliveries are not signed.'),
      field('signing_secret', w && w.signing_secret_set ? 'New signing secret (empty keeps the current one)' : 'Signing secret (optional)', secretInput,
        'whsec_ followed by base64.'),
      w && w.signing_secret_set ? h('div', { class: 'field' }, h('label', { class: 'check', for: 'wh-remove-secret' }, removeSecret, ' Remove the signing secret')) : null),
    h('fieldset', null,
      h('legend', null, 'Alerts'),
      w ? h('p', { class: 'note' }, w.alerted
        ? ['Alert state: ', h('span', { class: 'badge alerted' }, 'alerted'), ' since ', timeEl(w.alerted_at)]
        : 'Alert state: not alerted.') : null,
      h('div', { class: 'grid' },
        field('alert_email', 'Alert e-mail', h('input', { type: 'email', value: w ? w.alert_email : '', autocomplete: 'off' }), 'Told when deliveries keep failing.'),
        field('alert_url', 'Alert URL', h('input', { type: 'url', value: w ? w.alert_url : '', spellcheck: 'false' }), 'http(s) URL that gets a POST then.'))),
    error,
    h('div', { class: 'actions' },
      saveBtn,
      h('a', { class: 'button secondary', href: '#/webhooks' }, 'Cancel')));
  inputs.id = idInput;
  inputs.destination = destInput;
  inputs.signing_secret = secretInput;

  removeSecret.addEventListener('change', () => {
    secretInput.disabled = removeSecret.checked;
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    fieldError(form, null);
    const doc = {};
    if (!editing) {
      const v = idInput.value.trim();
      if (!/^[a-z0-9-]{1,63}$/.test(v)) {
        return invalid(idInput, 'The id must be 1 to 63 lowercase letters, digits or “-”.');
      }
      doc.id = v;
    }
    const dest = destInput.value.trim();
    if (!/^https?:\/\/[^/\s]/.test(dest)) return invalid(destInput, 'The destination must be an http:// or https:// URL.');
    if (!editing || dest !== w.destination) doc.destination = dest;
    if (!editing ? !active.checked : active.checked !== w.active) doc.active = active.checked;
    for (const [name, label] of NUMBERS) {
      const raw = inputs[name].value.trim();
      if (raw === '') {
        if (editing) return invalid(inputs[name], `${label} is required.`);
        continue;
      }
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) return invalid(inputs[name], `${label} must be a whole number.`);
      if (!editing || n !== w[name]) doc[name] = n;
    }
    for (const name of ['alert_email', 'alert_url']) {
      const v = inputs[name].value.trim();
      if (!editing ? v !== '' : v !== (w[name] || '')) doc[name] = v;
    }
    if (removeSecret.checked) doc.signing_secret = '';
    else if (secretInput.value.trim() !== '') doc.signing_secret = secretInput.value.trim();

    if (editing && Object.keys(doc).length === 0) {
      error.textContent = 'Nothing changed.';
      return;
    }
    saveBtn.disabled = true;
    try {
      const saved = editing ? await api.patchWebhook(id, doc) : await api.createWebhook(doc);
      ctx.notify(editing ? `Saved ${saved.id}.` : `Created ${saved.id}.`, 'success');
      ctx.navigate('/webhooks');
    } catch (e) {
      saveBtn.disabled = false;
      if (e instanceof ApiError && e.status === 409) {
        invalid(idInput, `A webhook with the id ${doc.id} exists already.`);
      } else if (e instanceof ApiError && fieldError(form, e)) {
        error.textContent = `Not saved: ${e.message}`;
      } else {
        error.textContent = `Not saved: ${e.message}`;
      }
    }
  });

  function invalid(input, msg) {
    fieldError(form, { field: input.name, message: msg });
    error.textContent = msg;
  }

  fill(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, '← Webhooks')),
    h('div', { class: 'page-head' },
      h('h1', { id: 'wh-title' }, editing ? ['Webhook ', h('span', { class: 'mono' }, String(id))] : 'New webhook'),
      editing ? h('span', { class: 'muted small' }, 'created ', timeEl(w.created_at), ' · updated ', timeEl(w.updated_at)) : null),
    form);
  (editing ? destInput : idInput).focus();
}
