// Harness for the browser tests of the management UI: a real soldr (SOLDR_BIN)
// with its mgmt port, a real local destination server, real Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core). Everything lives in temporary
// directories; screenshots go to SOLDR_UI_SHOTS (ctest sets it to a folder of
// the build tree) or to a temporary directory printed on stderr.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
export const SOLDR_BIN = process.env.SOLDR_BIN || join(REPO, 'build', 'soldr');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const KEEP = !!process.env.SOLDR_UI_KEEP;
const START_TIMEOUT_MS = 30000; // an ASan build starts slowly

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(fn, { timeout = 15000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(interval);
  }
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SOLDR_')) env[k] = v;
  return env;
}

function run(bin, args) {
  return new Promise((res, rej) => {
    execFile(bin, args, { env: cleanEnv(), timeout: 30000 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else res(stdout);
    });
  });
}

let shotsDir = null;
export function screenshotsDir() {
  if (!shotsDir) {
    shotsDir = process.env.SOLDR_UI_SHOTS || mkdtempSync(join(tmpdir(), 'soldr-ui-shots-'));
    mkdirSync(shotsDir, { recursive: true });
    process.stderr.write(`[soldr ui] screenshots in ${shotsDir}\n`);
  }
  return shotsDir;
}

export async function screenshot(page, name) {
  const file = join(screenshotsDir(), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// ------------------------------------------------------------------ soldr

export class Soldr {
  constructor() {
    accessSync(SOLDR_BIN, constants.X_OK);
    this.tmp = mkdtempSync(join(tmpdir(), 'soldr-ui-'));
    this.dataDir = join(this.tmp, 'data');
    mkdirSync(this.dataDir);
    this.secret = 'ui-test-secret-' + Math.random().toString(36).slice(2) + '-0123456789abcdef';
    this.secretFile = join(this.tmp, 'mgmt-secret');
    writeFileSync(this.secretFile, this.secret + '\n', { mode: 0o600 });
    this.proc = null;
    if (KEEP) process.stderr.write(`[soldr ui] keeping ${this.tmp}\n`);
  }

  // soldr webhook add LABEL URL [flags] --data-dir (before start)
  async addWebhook(label, url, ...flags) {
    return run(SOLDR_BIN, ['webhook', 'add', label, url, ...flags, '--data-dir', this.dataDir]);
  }

  async start() {
    for (let attempt = 0; attempt < 3; attempt++) {
      this.ingestPort = await freePort();
      this.mgmtPort = await freePort();
      const args = ['serve', '--data-dir', this.dataDir,
        '--listen', `127.0.0.1:${this.ingestPort}`,
        '--mgmt-listen', `127.0.0.1:${this.mgmtPort}`,
        '--mgmt-secret-file', this.secretFile];
      if (process.env.SOLDR_UI_DEV_DIR) args.push('--ui-dir', process.env.SOLDR_UI_DEV_DIR);
      this.stderrPath = join(this.tmp, `stderr-${attempt}.log`);
      this.stdoutPath = join(this.tmp, `stdout-${attempt}.log`);
      const { openSync } = await import('node:fs');
      this.proc = spawn(SOLDR_BIN, args, {
        env: cleanEnv(), cwd: this.tmp,
        stdio: ['ignore', openSync(this.stdoutPath, 'a'), openSync(this.stderrPath, 'a')],
      });
      this.exited = null;
      this.proc.on('exit', (code, sig) => { this.exited = { code, sig }; });
      this.base = `https://127.0.0.1:${this.mgmtPort}`;
      try {
        await waitFor(async () => {
          if (this.exited) throw new Error(`soldr exited (${JSON.stringify(this.exited)})`);
          const r = await this.fetch('GET', '/healthz', null, { auth: false });
          return r.status === 200;
        }, { timeout: START_TIMEOUT_MS, interval: 100, what: 'soldr mgmt /healthz' });
        await waitFor(() => tcpOpen(this.ingestPort), { timeout: 5000, what: 'soldr ingest port' });
        return this;
      } catch (e) {
        const log = this.stderr();
        await this.stop();
        if (/in use/i.test(log) && attempt < 2) continue;
        throw new Error(`soldr did not start: ${e.message}\ncommand: ${SOLDR_BIN} ${args.join(' ')}\n--- stderr ---\n${log.slice(-6000)}`);
      }
    }
    return this;
  }

  stderr() {
    try {
      return readFileSync(this.stderrPath, 'utf8');
    } catch {
      return '';
    }
  }

  async stop() {
    if (!this.proc || this.exited) return;
    this.proc.kill('SIGTERM');
    const t0 = Date.now();
    while (!this.exited && Date.now() - t0 < 10000) await sleep(50);
    if (!this.exited) this.proc.kill('SIGKILL');
    while (!this.exited) await sleep(20);
  }

  // Stops soldr; throws (keeping its stderr in the message) if it had died on
  // its own or did not exit cleanly on SIGTERM (e.g. a sanitizer report).
  async cleanup() {
    const diedEarly = this.proc && this.exited;
    await this.stop();
    const ex = this.exited;
    const log = this.stderr();
    if (!KEEP) rmSync(this.tmp, { recursive: true, force: true });
    if (ex && (diedEarly || ex.code !== 0)) {
      throw new Error(`soldr ${diedEarly ? 'died during the tests' : 'did not exit cleanly'} ` +
        `(${JSON.stringify(ex)})\n--- stderr ---\n${log.slice(-6000)}`);
    }
  }

  // The mgmt API over HTTPS (self-signed certificate made by soldr).
  fetch(method, path, body, { auth = true } = {}) {
    return new Promise((res, rej) => {
      const data = body === null || body === undefined ? null : Buffer.from(JSON.stringify(body));
      const headers = {};
      if (auth) headers.Authorization = `Bearer ${this.secret}`;
      if (data) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = data.length;
      }
      const req = https.request({
        host: '127.0.0.1', port: this.mgmtPort, method, path, headers, rejectUnauthorized: false, timeout: 10000,
      }, (resp) => {
        const chunks = [];
        resp.on('data', (c) => chunks.push(c));
        resp.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch { /* not JSON */ }
          res({ status: resp.statusCode, headers: resp.headers, text, json });
        });
      });
      req.on('error', rej);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      if (data) req.write(data);
      req.end();
    });
  }

  async api(method, path, body) {
    const r = await this.fetch(method, `/api/v1${path}`, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.text}`);
    return r.json;
  }

  // A request into ingest for LABEL.wh.localhost; resolves to the stored id.
  ingest(label, { method = 'POST', path = '/', headers = {}, body = '' } = {}) {
    return new Promise((res, rej) => {
      const data = Buffer.from(body);
      const req = http.request({
        host: '127.0.0.1', port: this.ingestPort, method, path,
        headers: { Host: `${label}.wh.localhost`, 'Content-Length': data.length, ...headers },
      }, (resp) => {
        const chunks = [];
        resp.on('data', (c) => chunks.push(c));
        resp.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (resp.statusCode !== 200) return rej(new Error(`ingest answered ${resp.statusCode}: ${text}`));
          res(JSON.parse(text).id);
        });
      });
      req.on('error', rej);
      req.end(data);
    });
  }

  // Polls GET /requests/{id} until pred(detail) holds.
  async waitRequest(id, pred, what, timeout = 20000) {
    let last = null;
    try {
      return await waitFor(async () => {
        last = await this.api('GET', `/requests/${id}`);
        return pred(last) ? last : null;
      }, { timeout, interval: 100, what });
    } catch (e) {
      throw new Error(`${e.message}; last seen: ${JSON.stringify(last)?.slice(0, 2000)}\n--- soldr stderr ---\n${this.stderr().slice(-3000)}`);
    }
  }
}

function tcpOpen(port) {
  return new Promise((res) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); res(true); });
    s.on('error', () => res(false));
  });
}

// ------------------------------------------------------------------ destination

// A local HTTP destination that records what it receives and answers with
// the status set in .status (200 by default).
export async function startSink() {
  const sink = {
    status: 200,
    received: [],
    server: null,
    port: 0,
    url(path = '/hook') {
      return `http://127.0.0.1:${this.port}${path}`;
    },
    close() {
      return new Promise((r) => {
        this.server.closeAllConnections?.();
        this.server.close(() => r());
      });
    },
  };
  sink.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      sink.received.push({
        method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'),
      });
      const out = sink.status >= 200 && sink.status < 300 ? 'ok' : `destination says ${sink.status}`;
      res.writeHead(sink.status, { 'Content-Type': 'text/plain' });
      res.end(out);
    });
  });
  await new Promise((r) => sink.server.listen(0, '127.0.0.1', r));
  sink.port = sink.server.address().port;
  return sink;
}

// ------------------------------------------------------------------ browser

// playwright-core's launch() gives Chromium a fresh, empty --user-data-dir of
// its own in the temporary directory and removes it on close.
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: run scripts/install-deps.sh --test (or set CHROMIUM)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

// A fresh context (its own sessionStorage) and page, collecting console errors
// and page errors so a test can assert there were none.
export async function newPage(browser, soldr) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, viewport: { width: 1366, height: 860 }, baseURL: soldr.base,
  });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(`console: ${m.text()}`);
  });
  page.setDefaultTimeout(15000);
  return page;
}

export async function signIn(page, secret) {
  await page.goto('/');
  await page.getByLabel('Management secret').fill(secret);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Requests', level: 1 }).waitFor();
}
