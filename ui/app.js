// soldr management UI: sign-in, hash router, shared chrome.
import { apiBase, signIn, signOut, signedIn, ApiError } from './api.js';
import { h, fill } from './lib.js';
import { requestsView } from './views/requests.js';
import { requestView } from './views/request.js';
import { webhooksView, webhookFormView } from './views/webhooks.js';
import { dashboardView } from './views/dashboard.js';

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
const toasts = document.getElementById('toasts');

// ---------------------------------------------------------------- toasts

export function notify(message, kind = 'info') {
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const t = h('div', { class: ['toast', `toast-${kind}`] }, h('span', null, message), close);
  close.addEventListener('click', () => t.remove());
  toasts.append(t);
  while (toasts.children.length > 3) toasts.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === 'error' ? 12000 : 6000);
}

// ---------------------------------------------------------------- routing

const routes = [
  [/^\/requests\/?$/, requestsView, 'requests'],
  [/^\/requests\/([^/]+)$/, requestView, 'requests'],
  [/^\/webhooks\/?$/, webhooksView, 'webhooks'],
  [/^\/webhooks\/new$/, webhookFormView, 'webhooks'],
  [/^\/webhooks\/([^/]+)$/, webhookFormView, 'webhooks'],
  [/^\/dashboard\/?$/, dashboardView, 'dashboard'],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  return { path: path || '/requests', params };
}

export function hrefFor(path, params) {
  const qs = params ? new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString() : '';
  return '#' + path + (qs ? '?' + qs : '');
}

export function navigate(path, params) {
  const target = hrefFor(path, params);
  if (location.hash === target) route();
  else location.hash = target;
}

let cleanup = null;
let generation = 0;
let lastPath = null;

function stopView() {
  generation++;
  if (typeof cleanup === 'function') {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
  }
  cleanup = null;
}

async function route() {
  if (!signedIn()) {
    showSignIn();
    return;
  }
  const { path, params } = parseHash();
  if (!location.hash.startsWith('#/')) {
    history.replaceState(null, '', hrefFor('/requests'));
  }
  stopView();
  const gen = generation;
  topbar.hidden = false;
  document.getElementById('api-base').textContent = apiBase() ? `API: ${apiBase()}` : '';
  let view = null;
  let match = null;
  let section = null;
  for (const [re, fn, sec] of routes) {
    match = path.match(re);
    if (match) {
      view = fn;
      section = sec;
      break;
    }
  }
  for (const a of topbar.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!view) {
    fill(main, h('h1', null, 'Not found'), h('p', null, 'No such page. ', h('a', { href: '#/requests' }, 'Go to the requests.')));
    return;
  }
  const ctx = {
    params,
    match: match.slice(1).map((s) => decodeURIComponent(s)),
    alive: () => gen === generation,
    navigate,
    notify,
    hrefFor,
  };
  // Same page with other parameters (a filter, a page): keep the focus on the
  // control that had it; another page: focus its content.
  const samePage = path === lastPath;
  const focusedId = samePage && document.activeElement && main.contains(document.activeElement)
    ? document.activeElement.id : '';
  lastPath = path;
  if (!samePage) fill(main, h('p', { class: 'loading' }, 'Loading…'));
  try {
    const c = await view(main, ctx);
    if (gen === generation) {
      cleanup = c;
      const again = focusedId && document.getElementById(focusedId);
      if (again) again.focus();
      else if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
    } else if (typeof c === 'function') c();
  } catch (e) {
    if (gen !== generation) return;
    if (e instanceof ApiError && e.status === 401) return; // handled by the unauthorized event
    if (!(e instanceof ApiError)) console.error(e);
    const notFound = e instanceof ApiError && e.status === 404;
    fill(main, h('h1', null, notFound ? 'Not found' : 'Something went wrong'),
      h('p', { class: 'error', role: 'alert' }, e.message || String(e)),
      h('div', { class: 'actions' },
        notFound ? null : h('button', { type: 'button', onclick: () => route() }, 'Try again'),
        h('a', { class: 'button secondary', href: `#/${section}` }, `Back to ${section}`)));
  }
}

// ---------------------------------------------------------------- sign-in

function showSignIn(message) {
  stopView();
  lastPath = null;
  topbar.hidden = true;
  const secretInput = h('input', {
    id: 'secret', name: 'secret', type: 'password', autocomplete: 'current-password',
    required: true, spellcheck: 'false', 'aria-describedby': 'secret-help',
  });
  const baseInput = h('input', {
    id: 'api-base-input', name: 'api', type: 'url', placeholder: 'same origin as this page',
    value: apiBase(), spellcheck: 'false',
  });
  const error = h('p', { class: 'error', id: 'signin-error', role: 'alert' });
  if (message) error.textContent = message;
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'signin card', novalidate: true },
    h('h1', null, h('span', { class: 'brand-big' }, 'soldr'), ' management'),
    h('div', { class: 'field' },
      h('label', { for: 'secret' }, 'Management secret'),
      secretInput,
      h('p', { class: 'help', id: 'secret-help' },
        'The secret from SOLDR_MGMT_SECRET_FILE. It is kept in this tab only, until you sign out or close it.')),
    h('details', { open: apiBase() !== '' || undefined },
      h('summary', null, 'API address'),
      h('div', { class: 'field' },
        h('label', { for: 'api-base-input' }, 'Base URL of the management API'),
        baseInput,
        h('p', { class: 'help' }, 'Leave empty when this page is served by soldr itself.'))),
    error,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const value = secretInput.value;
    if (!value) {
      error.textContent = 'Enter the secret.';
      secretInput.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    error.textContent = '';
    try {
      await signIn(value, baseInput.value.trim());
      if (!location.hash.startsWith('#/')) history.replaceState(null, '', hrefFor('/requests'));
      await route();
      main.focus();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        error.textContent = 'Wrong secret: the API refused it (401).';
      } else {
        error.textContent = e.message || String(e);
      }
      secretInput.setAttribute('aria-invalid', 'true');
      secretInput.select();
      secretInput.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  fill(main, h('div', { class: 'signin-wrap' }, form));
  document.title = 'Sign in · soldr';
  secretInput.focus();
}

// ---------------------------------------------------------------- start

document.getElementById('sign-out').addEventListener('click', () => {
  signOut();
  showSignIn();
  notify('Signed out.');
});

document.getElementById('skip-link').addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

window.addEventListener('soldr:unauthorized', () => {
  if (!signedIn()) return;
  signOut();
  showSignIn('The API no longer accepts this secret (401). Sign in again.');
});

window.addEventListener('hashchange', () => route());

route();
