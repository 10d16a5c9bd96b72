// The management API client (contract: src/mgmt/API.md). The secret and an
// optional API base URL live in sessionStorage; by default the API is on the
// same origin as the page (relative /api/v1/...).

const SECRET_KEY = 'soldr.secret';
const BASE_KEY = 'soldr.apiBase';

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0 for a network error
    this.field = field || null;
  }
}

// The base URL the page was told about: <meta name="soldr-api" content="URL">
// (set by whatever serves the UI apart from soldr; "" = same origin). Not from
// the page address: a crafted link must not send the secret elsewhere.
export function defaultBase() {
  const meta = document.querySelector('meta[name="soldr-api"]');
  return meta ? meta.getAttribute('content') || '' : '';
}

export function apiBase() {
  const stored = sessionStorage.getItem(BASE_KEY);
  return stored !== null ? stored : defaultBase();
}

export function secret() {
  return sessionStorage.getItem(SECRET_KEY);
}

export function signedIn() {
  return !!secret();
}

export function signOut() {
  sessionStorage.removeItem(SECRET_KEY);
}

function url(base, path, query) {
  let u = base.replace(/\/+$/, '') + '/api/v1' + path;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
    }
    const s = qs.toString();
    if (s) u += '?' + s;
  }
  return u;
}

async function call(method, path, { query, body, base = apiBase(), token = secret() } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(base, path, query), init);
  } catch (e) {
    throw new ApiError(0, `Cannot reach the API${base ? ' at ' + base : ''} (${e.message})`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const msg = (data && typeof data.error === 'string' && data.error) || `HTTP ${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, msg, data && data.field);
    if (res.status === 401 && token === secret()) {
      window.dispatchEvent(new CustomEvent('soldr:unauthorized', { detail: err }));
    }
    throw err;
  }
  if (data === null && text) throw new ApiError(res.status, 'The API answered something that is not JSON');
  return data;
}

// Checks a secret (and a base) before keeping them: resolves, or throws an
// ApiError (401 for a wrong secret).
export async function signIn(newSecret, base) {
  await call('GET', '/webhooks', { base, token: newSecret });
  sessionStorage.setItem(SECRET_KEY, newSecret);
  if (base === defaultBase()) sessionStorage.removeItem(BASE_KEY);
  else sessionStorage.setItem(BASE_KEY, base);
}

const enc = encodeURIComponent;

export const api = {
  webhooks: () => call('GET', '/webhooks').then((r) => r.webhooks || []),
  webhook: (id) => call('GET', `/webhooks/${enc(id)}`),
  createWebhook: (doc) => call('POST', '/webhooks', { body: doc }),
  patchWebhook: (id, doc) => call('PATCH', `/webhooks/${enc(id)}`, { body: doc }),
  deleteWebhook: (id) => call('DELETE', `/webhooks/${enc(id)}`),

  requests: (filter) => call('GET', '/requests', { query: filter }),
  request: (id) => call('GET', `/requests/${enc(id)}`),
  editRequest: (id, edit) => call('PATCH', `/requests/${enc(id)}`, { body: edit }),
  resend: (id) => call('POST', `/requests/${enc(id)}/resend`),
  bulkResend: (filter) => call('POST', '/requests/resend', { body: filter }),

  stats: () => call('GET', '/stats'),
};
