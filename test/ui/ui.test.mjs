// Browser tests of the management UI against a real soldr, a real local
// destination and real Chromium. Run: cd test/ui && SOLDR_BIN=../../build/soldr node --test
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  Soldr, startSink, launchBrowser, newPage, signIn, screenshot, screenshotsDir, waitFor,
} from './harness.mjs';

const XSS_BODY = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';
const XSS_HEADER = '<img src=x onerror="window.__pwned=3">';
const ORIGINAL = JSON.stringify({ order: 42, note: 'original' });
const EDITED = JSON.stringify({ order: 42, note: 'edited in the UI' });

// Console noise that is expected: the browser logs failed loads (the 401 of
// a wrong secret) as console errors.
const benign = (e) => /Failed to load resource/.test(e);

describe('management UI', { timeout: 200000 }, () => {
  let soldr;
  let bad; // destination that answers 500 until told otherwise
  let good; // destination that answers 200
  let browser;
  let page;
  let failedId;
  let xssId;

  before(async () => {
    screenshotsDir();
    bad = await startSink();
    bad.status = 500;
    good = await startSink();
    soldr = new Soldr();
    await soldr.addWebhook('failing', bad.url('/hook'), '--max-attempts', '1');
    await soldr.addWebhook('good', good.url('/hook'));
    await soldr.addWebhook('paged', good.url('/paged'), '--inactive');
    await soldr.start();

    failedId = await soldr.ingest('failing', {
      path: '/orders?src=ui-test', headers: { 'Content-Type': 'application/json', 'X-Trace': 'abc-123' }, body: ORIGINAL,
    });
    xssId = await soldr.ingest('good', {
      path: '/xss?a=1', headers: { 'Content-Type': 'text/html', 'X-Evil': XSS_HEADER }, body: XSS_BODY,
    });
    await soldr.waitRequest(failedId, (d) => d.request.state === 'failed', 'the request to the 500 destination to fail');
    await soldr.waitRequest(xssId, (d) => d.request.state === 'delivered', 'the xss request to be delivered');
    browser = await launchBrowser();
    page = await newPage(browser, soldr);
  });

  afterEach(() => {
    const errors = (page?.errors || []).filter((e) => !benign(e));
    if (page) page.errors = [];
    assert.deepEqual(errors, [], 'no script error in the page');
  });

  after(async () => {
    try {
      await browser?.close();
      await soldr?.cleanup(); // fails the suite if soldr crashed or exited uncleanly
    } finally {
      await bad?.close();
      await good?.close();
    }
  });

  it('signs in; a wrong secret is refused with a message', async () => {
    await page.goto('/');
    const secret = page.getByLabel('Management secret');
    await secret.waitFor();
    await screenshot(page, 'signin');
    await secret.fill('this-is-not-the-secret-but-is-long-enough');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const err = page.locator('#signin-error');
    await waitFor(async () => /wrong secret/i.test(await err.textContent()), { what: 'the wrong-secret message' });
    assert.equal(await secret.getAttribute('aria-invalid'), 'true');
    await screenshot(page, 'signin-wrong-secret');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('soldr.secret')), null);

    await secret.fill(soldr.secret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Requests', level: 1 }).waitFor();
    await page.locator(`tr[data-id="${failedId}"]`).waitFor();
    await screenshot(page, 'requests');
  });

  it('finds the failed request with the filters', async () => {
    await page.goto('/#/requests');
    await page.getByLabel('State').selectOption('failed');
    await page.waitForURL(/state=failed/);
    await page.getByLabel('Webhook').selectOption('failing');
    await page.waitForURL(/webhook=failing/);
    const row = page.locator(`tr[data-id="${failedId}"]`);
    await row.waitFor();
    assert.equal(await page.locator('table.requests tbody tr').count(), 1, 'only the failed request is listed');
    assert.equal((await row.locator('.badge.state-failed').textContent()).trim(), 'failed');
    assert.match(await row.textContent(), /\/orders\?src=ui-test/);
    assert.match(await row.textContent(), /500/);
    // The good one is not there, and the text filter narrows too.
    assert.equal(await page.locator(`tr[data-id="${xssId}"]`).count(), 0);
    await page.getByLabel('Target contains').fill('no-such-target');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('No requests match these filters.').waitFor();
    await page.getByLabel('Target contains').fill('src=ui-test');
    await page.keyboard.press('Enter');
    await row.waitFor();
    await screenshot(page, 'requests-failed-filter');
  });

  it('edits the failed request and resends it: the destination gets the edited body', async () => {
    await page.locator(`tr[data-id="${failedId}"] a.request-link`).click();
    await page.locator('#request-id').waitFor();
    assert.equal(await page.locator('#request-id').textContent(), failedId);
    const received = page.locator('section[data-version="received"]');
    assert.match(await received.textContent(), /"note": "original"/, 'JSON body pretty-printed');
    assert.match(await received.textContent(), /X-Trace/);
    assert.equal(await page.locator('li.attempt').count(), 1);
    assert.match(await page.locator('li.attempt').first().textContent(), /500/);

    await page.getByRole('button', { name: 'Edit' }).click();
    const body = page.getByLabel('Body', { exact: true });
    assert.equal(await body.inputValue(), ORIGINAL);
    await body.fill(EDITED);
    await page.getByRole('button', { name: 'Save edit' }).click();
    const edited = page.locator('section[data-version="edited"]');
    await edited.waitFor();
    assert.match(await edited.textContent(), /edited in the UI/);
    assert.match(await received.textContent(), /"note": "original"/, 'the original stays as received');
    const api = await soldr.api('GET', `/requests/${failedId}`);
    assert.equal(api.request.edited.body, EDITED);
    assert.equal(api.request.body, ORIGINAL);

    bad.status = 200;
    const before = bad.received.length;
    await page.getByRole('button', { name: 'Resend now' }).click();
    const status = page.locator('#resend-status');
    await waitFor(async () => /delivered, HTTP 200/.test(await status.textContent()), {
      timeout: 30000, what: 'the resend outcome in the page',
    });
    const manual = page.locator('li.attempt[data-manual="true"][data-status="200"]');
    assert.equal(await manual.count(), 1, 'the manual attempt is listed with its 200');
    assert.match(await manual.textContent(), /manual/);
    assert.equal((await page.locator('.request-title .badge').textContent()).trim(), 'delivered');
    const got = bad.received.slice(before);
    assert.ok(got.length >= 1, 'the destination got the resend');
    assert.equal(got[got.length - 1].body, EDITED, 'the destination got the EDITED body');
    await screenshot(page, 'request-detail');
  });

  it('shows request data as text: a <script>/<img onerror> body never runs', async () => {
    await page.goto(`/#/requests/${xssId}`);
    await page.locator('#request-id').waitFor();
    const received = page.locator('section[data-version="received"]');
    await waitFor(async () => (await received.textContent()).includes(XSS_BODY), { what: 'the body shown as text' });
    assert.ok((await received.locator('table.kv').textContent()).includes(XSS_HEADER), 'the header value shown as text');
    assert.equal(await page.locator('main img').count(), 0, 'no <img> made from the data');
    assert.equal(await page.locator('main script').count(), 0, 'no <script> made from the data');
    // The response body of the attempt too.
    await page.locator('details.response summary').first().click();
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => typeof window.__pwned), 'undefined');
    await screenshot(page, 'request-xss');

    // And in the list.
    await page.goto('/#/requests?webhook=good');
    await page.locator(`tr[data-id="${xssId}"]`).waitFor();
    assert.equal(await page.evaluate(() => typeof window.__pwned), 'undefined');
  });

  it('pages through the list with Older → and back', async () => {
    const ids = [];
    for (let i = 0; i < 55; i++) ids.push(await soldr.ingest('paged', { path: `/p/${i}`, body: `n=${i}` }));
    await page.goto('/#/requests?webhook=paged');
    await page.locator(`tr[data-id="${ids[54]}"]`).waitFor();
    assert.equal(await page.locator('table.requests tbody tr').count(), 50);
    assert.equal(await page.locator('table.requests tbody tr').first().getAttribute('data-id'), ids[54], 'newest first');
    await page.getByRole('link', { name: 'Older →' }).click();
    await page.locator(`tr[data-id="${ids[0]}"]`).waitFor();
    assert.equal(await page.locator('table.requests tbody tr').count(), 5);
    await page.getByRole('link', { name: '← Newer' }).click();
    await page.locator(`tr[data-id="${ids[54]}"]`).waitFor();
    assert.equal(await page.locator('table.requests tbody tr').count(), 50);
  });

  it('bulk-resends the failed requests of a filter after confirming the count', async () => {
    bad.status = 500;
    const more = [];
    for (let i = 0; i < 2; i++) more.push(await soldr.ingest('failing', { path: `/bulk/${i}`, body: `bulk ${i}` }));
    for (const id of more) await soldr.waitRequest(id, (d) => d.request.state === 'failed', 'the bulk requests to fail');
    await page.goto('/#/requests?webhook=failing&state=failed');
    await page.locator(`tr[data-id="${more[0]}"]`).waitFor();
    await page.getByRole('button', { name: 'Resend matching…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.locator('.count').waitFor();
    assert.equal((await dialog.locator('.count').textContent()).trim(), '2');
    assert.match(await dialog.textContent(), /webhook failing, state failed/);
    await screenshot(page, 'bulk-resend-dialog');
    bad.status = 200;
    await dialog.getByRole('button', { name: 'Resend 2' }).click();
    await page.locator('.toast', { hasText: 'Resent 2 requests.' }).waitFor();
    for (const id of more) await soldr.waitRequest(id, (d) => d.request.state === 'delivered', 'the bulk-resent requests to be delivered');
  });

  it('creates a webhook through the UI and lists it', async () => {
    await page.goto('/#/webhooks');
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    await page.getByRole('link', { name: '+ New webhook' }).click();
    await page.getByLabel('Id (label)').fill('made-in-ui');
    await page.getByLabel('Destination URL').fill(good.url('/from-ui'));
    await page.getByLabel('Max attempts').fill('3');
    await page.getByLabel('Timeout (ms)').fill('5000');
    await page.getByLabel('Alert URL').fill('http://127.0.0.1:9/alert');
    await screenshot(page, 'webhook-form');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    const row = page.locator('tr[data-id="made-in-ui"]');
    await row.waitFor();
    assert.match(await row.textContent(), /from-ui/);
    assert.match(await row.textContent(), /3 attempts/);
    const w = await soldr.api('GET', '/webhooks/made-in-ui');
    assert.equal(w.destination, good.url('/from-ui'));
    assert.equal(w.max_attempts, 3);
    assert.equal(w.timeout_ms, 5000);
    assert.equal(w.alert_url, 'http://127.0.0.1:9/alert');
    assert.equal(w.active, true);

    // Deactivate from the list.
    await row.getByRole('button', { name: 'Deactivate' }).click();
    await row.locator('.badge.inactive').waitFor();
    assert.equal((await soldr.api('GET', '/webhooks/made-in-ui')).active, false);

    // Creating it again is refused with a message on the id.
    await page.getByRole('link', { name: '+ New webhook' }).click();
    await page.getByLabel('Id (label)').fill('made-in-ui');
    await page.getByLabel('Destination URL').fill(good.url('/again'));
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await page.locator('.field-error', { hasText: 'exists already' }).waitFor();

    await page.goto('/#/webhooks');
    await row.waitFor();
    await screenshot(page, 'webhooks');
  });

  it('edits and deletes a webhook', async () => {
    await page.goto('/#/webhooks/made-in-ui');
    await page.getByLabel('Max attempts').fill('7');
    await page.getByLabel('Active (deliver requests)').check();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('tr[data-id="made-in-ui"] .badge.active').waitFor();
    const w = await soldr.api('GET', '/webhooks/made-in-ui');
    assert.equal(w.max_attempts, 7);
    assert.equal(w.active, true);

    await page.locator('tr[data-id="made-in-ui"]').getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.locator('tr[data-id="made-in-ui"]').waitFor({ state: 'detached' });
    assert.equal((await soldr.fetch('GET', '/api/v1/webhooks/made-in-ui', null)).status, 404);
  });

  it('shows non-zero counts on the dashboard', async () => {
    await page.goto('/#/dashboard');
    const received = page.locator('[data-stat="received"] .stat-value');
    await received.waitFor();
    const n = Number((await received.textContent()).replace(/,/g, ''));
    assert.ok(n >= 3, `received total ${n}`);
    const delivered = Number((await page.locator('[data-stat="delivered"] .stat-value').textContent()).replace(/,/g, ''));
    assert.ok(delivered >= 1, `delivered total ${delivered}`);
    const failed = Number((await page.locator('[data-stat="failed"] .stat-value').textContent()).replace(/,/g, ''));
    assert.ok(failed >= 1, `failed total ${failed}`);
    assert.ok(await page.locator('.chart rect.bar-received').count() > 0, 'per-day bars drawn');
    await screenshot(page, 'dashboard');
  });

  it('signs out, and signs in again with the keyboard alone', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Management secret').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('soldr.secret')), null);
    await page.goto('/#/webhooks');
    const secret = page.getByLabel('Management secret');
    await secret.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'secret', 'the secret field has the focus');
    await page.keyboard.type(soldr.secret);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    // The focus is on the page's content; Tab reaches its first control, a real link.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), '+ New webhook');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'New webhook', level: 1 }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'wh-id', 'the form starts on its first field');
  });
});
