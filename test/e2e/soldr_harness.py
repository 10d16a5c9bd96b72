"""Shared harness for the soldr end-to-end tests (Python standard library only).

It starts the real `soldr` binary (SOLDR_BIN, default build/soldr of this
repository) on a free loopback port with its own temporary data directory,
talks to it over raw sockets (exact bytes in, parsed responses out) and reads
its SQLite database read-only while it runs.

Nothing is written into the source tree: every file lives in a temporary
directory that is removed when the test ends (set SOLDR_E2E_KEEP=1 to keep
them for a post-mortem; their paths are printed then).
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SOLDR_BIN = os.environ.get("SOLDR_BIN") or os.path.join(REPO, "build", "soldr")

DOMAIN = "wh.localhost"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def now_ms():
    return int(time.time() * 1000)


def uuid7_ms(uid):
    """The unix-ms timestamp carried by a UUIDv7 string."""
    return int(uid.replace("-", "")[:12], 16)


def b(s):
    return s if isinstance(s, (bytes, bytearray)) else str(s).encode("utf-8")


# ---------------------------------------------------------------------------
# processes and files
# ---------------------------------------------------------------------------

def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra=None):
    """The current environment without any SOLDR_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLDR_")}
    if extra:
        env.update(extra)
    return env


def make_tempdir(tc, prefix="soldr-e2e-"):
    """A temporary directory removed when the test `tc` ends."""
    d = tempfile.mkdtemp(prefix=prefix)
    if os.environ.get("SOLDR_E2E_KEEP"):
        sys.stderr.write("\n[soldr e2e] keeping %s\n" % d)
    else:
        tc.addCleanup(shutil.rmtree, d, True)
    return d


def run_soldr(*args, input=None, env=None, timeout=30, cwd=None):
    """Runs a soldr subcommand to completion; returns CompletedProcess (bytes)."""
    cwd = cwd or tempfile.gettempdir()
    return subprocess.run([SOLDR_BIN, *[str(a) for a in args]], input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=clean_env(env), timeout=timeout, cwd=cwd)


def require_binary(tc):
    if not (os.path.isfile(SOLDR_BIN) and os.access(SOLDR_BIN, os.X_OK)):
        tc.fail("soldr binary not found at %s (build it, or set SOLDR_BIN)" % SOLDR_BIN)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


class Soldr:
    """One `soldr serve` process owned by one test.

    Soldr(tc, "--max-body", "1024").start() picks a free port and a temp dir,
    starts the daemon with stdout/stderr captured to files there and waits
    until the port accepts. The test's cleanup stops it (SIGTERM, then
    SIGKILL after 10 s) and fails loudly if it had died on its own.
    """

    def __init__(self, tc, *args, data_dir=None, stdout_path=None, env=None,
                 domain=DOMAIN, use_flags=True):
        require_binary(tc)
        self.tc = tc
        self.args = [str(a) for a in args]
        self.tmp = make_tempdir(tc)
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.db_path = os.path.join(self.data_dir, "soldr.db")
        self.stdout_path = stdout_path or os.path.join(self.tmp, "stdout.log")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.env = env or {}
        self.domain = domain
        self.use_flags = use_flags
        self.proc = None
        self.port = None
        self.stopped_rc = None
        self.terminating = False
        self._cleanup_registered = False

    # -- lifecycle ----------------------------------------------------------

    def command(self):
        cmd = [SOLDR_BIN, "serve"]
        if self.use_flags:
            cmd += ["--data-dir", self.data_dir, "--listen", "127.0.0.1:%d" % self.port,
                    "--domain", self.domain]
        return cmd + self.args

    def start(self):
        if not self._cleanup_registered:
            self.tc.addCleanup(self._cleanup)
            self._cleanup_registered = True
        for attempt in range(3):
            self.port = free_port()
            env = dict(self.env)
            if not self.use_flags:
                env.setdefault("SOLDR_DATA_DIR", self.data_dir)
                env.setdefault("SOLDR_LISTEN", "127.0.0.1:%d" % self.port)
                env.setdefault("SOLDR_DOMAIN", self.domain)
            out = open(self.stdout_path, "ab")
            err = open(self.stderr_path, "ab")
            try:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, env=clean_env(env),
                                             cwd=self.tmp)
            finally:
                out.close()
                err.close()
            ready = self._wait_ready()
            if ready:
                return self
            log = self.stderr_text()
            if re.search(r"in use|EADDRINUSE", log, re.I) and attempt < 2:
                continue  # lost the port race: try another one
            self._kill()
            self.tc.fail("soldr did not accept on port %d within %.0f s (exit status %s)\n"
                         "command: %s\n--- stderr ---\n%s"
                         % (self.port, START_TIMEOUT, self.proc.returncode,
                            " ".join(self.command()), log[-8000:]))
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            self.tc.fail("soldr died (exit status %s)\n--- stderr ---\n%s"
                         % (self.proc.returncode, self.stderr_text()[-8000:]))

    def terminate(self):
        """Sends SIGTERM without waiting (the test then expects the exit)."""
        self.terminating = True
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for an exit the test caused; returns the exit status."""
        try:
            self.stopped_rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self.tc.fail("soldr did not exit within %.0f s" % timeout)
        return self.stopped_rc

    def stop(self):
        """SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
                self.tc.fail("soldr did not exit within %.0f s of SIGTERM" % STOP_TIMEOUT)
        self.stopped_rc = self.proc.returncode
        return self.stopped_rc

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _cleanup(self):
        died = (self.proc is not None and self.stopped_rc is None and not self.terminating
                and self.proc.poll() is not None)
        was_running = self.proc is not None and self.proc.poll() is None
        rc = self.stop()
        if died:
            raise AssertionError("soldr exited on its own during the test (status %s)\n"
                                 "--- stderr ---\n%s" % (self.proc.returncode,
                                                         self.stderr_text()[-8000:]))
        # A sanitizer build reports leaks and races at exit: a clean stop must
        # be exit 0 with no report, in every test, not only where one asserts it.
        text = self.stderr_text() if self.proc is not None else ""
        for mark in SANITIZER_MARKS:
            if mark in text:
                i = text.index(mark)
                raise AssertionError("sanitizer report in soldr's stderr:\n%s"
                                     % text[max(0, i - 200):i + 6000])
        if was_running and rc != 0:
            raise AssertionError("soldr exited %s on SIGTERM\n--- stderr ---\n%s"
                                 % (rc, text[-8000:]))

    # -- captured output ----------------------------------------------------

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout_bytes(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def stdout_records(self):
        """The stdout lines parsed as JSON (every line must be a JSON object)."""
        return parse_records(self.stdout_bytes(), self.tc)

    # -- HTTP ---------------------------------------------------------------

    def host(self, label, with_port=True):
        h = "%s.%s" % (label, self.domain)
        return "%s:%d" % (h, self.port) if with_port else h

    def connect(self, timeout=10):
        return HTTPConn(self.port, timeout=timeout)

    def send(self, label, body=b"", method="POST", target="/", headers=(), **kw):
        """One request on a fresh connection; returns (Response, sent)."""
        with self.connect() as c:
            sent = Req(method, target, [("Host", self.host(label))] + list(headers), body, **kw)
            c.send(sent.raw)
            resp = c.read_response()
            sent.peer = c.local_peer
            return resp, sent

    # -- database -----------------------------------------------------------

    def db(self):
        return open_db_ro(self.db_path, self.tc)


def parse_records(data, tc=None):
    recs = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            recs.append(json.loads(line))
        except ValueError:
            msg = "stdout line is not JSON: %r" % line[:300]
            if tc:
                tc.fail(msg)
            raise AssertionError(msg)
    return recs


# ---------------------------------------------------------------------------
# HTTP over raw sockets
# ---------------------------------------------------------------------------

class Req:
    """An HTTP/1.1 request as exact bytes, plus what soldr should store.

    headers: list of (name, value) str/bytes, sent in order as "Name: value".
    Content-Length is appended unless a Content-Length or Transfer-Encoding
    header is given or content_length=False.
    """

    def __init__(self, method, target, headers, body=b"", content_length=True, raw_body=None):
        self.method = b(method)
        self.target = b(target)
        self.body = b(body)
        hs = [(b(n), b(v)) for n, v in headers]
        names = {n.lower() for n, _ in hs}
        if content_length and b"content-length" not in names and b"transfer-encoding" not in names:
            hs.append((b"Content-Length", b"%d" % len(self.body)))
        self.headers = hs
        self.header_block = b"".join(n + b": " + v + b"\r\n" for n, v in hs)
        self.raw = (self.method + b" " + self.target + b" HTTP/1.1\r\n" + self.header_block
                    + b"\r\n" + (self.body if raw_body is None else b(raw_body)))
        self.peer = None

    def host_header(self):
        for n, v in self.headers:
            if n.lower() == b"host":
                return v
        return None


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name, value) str
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


class ConnectionClosed(Exception):
    pass


class HTTPConn:
    """A client connection: send exact bytes, read parsed responses."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.eof = False
        lp = self.sock.getsockname()
        self.local_peer = "%s:%d" % (lp[0], lp[1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise ConnectionClosed("connection closed by soldr")
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by soldr")
        self.buf += chunk

    def _read_until(self, sep):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, allow_1xx=False):
        """The next response. Interim 1xx responses are skipped unless allow_1xx."""
        while True:
            head = self._read_until(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            m = re.match(rb"^HTTP/1\.[01] (\d{3})(?: (.*))?$", lines[0])
            if not m:
                raise AssertionError("bad status line from soldr: %r" % lines[0])
            status = int(m.group(1))
            reason = (m.group(2) or b"").decode("latin-1")
            headers = []
            for line in lines[1:]:
                n, _, v = line.partition(b":")
                headers.append((n.decode("latin-1").strip().lower(), v.decode("latin-1").strip()))
            resp = Response(status, reason, headers, b"", head)
            if 100 <= status < 200:
                if allow_1xx:
                    return resp
                continue
            te = (resp.header("transfer-encoding") or "").lower()
            cl = resp.header("content-length")
            if status in (204, 304):
                body = b""
            elif "chunked" in te:
                body = b""
                while True:
                    size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                    if size == 0:
                        while self._read_until(b"\r\n"):
                            pass
                        break
                    body += self._read_exact(size)
                    self._read_exact(2)
            elif cl is not None:
                body = self._read_exact(int(cl))
            else:
                body = self.read_until_close()
            resp.body = body
            return resp

    def read_until_close(self, timeout=None):
        """Everything until the peer closes (raises socket.timeout if it does not)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while True:
                self._fill()
        except ConnectionClosed:
            pass
        except ConnectionResetError:
            self.eof = True
        out, self.buf = self.buf, b""
        return out

    def closed_by_peer(self, timeout=3.0):
        """True if soldr closes the connection (EOF or reset) within timeout
        without sending anything more."""
        try:
            rest = self.read_until_close(timeout)
        except (socket.timeout, TimeoutError):
            return False
        return rest == b""


def chunked(*chunks, trailer=b""):
    out = b""
    for c in chunks:
        c = b(c)
        out += b"%x\r\n" % len(c) + c + b"\r\n"
    return out + b"0\r\n" + trailer + b"\r\n"


# ---------------------------------------------------------------------------
# database
# ---------------------------------------------------------------------------

REQUEST_COLUMNS = ("seq", "id", "webhook", "received_at", "peer", "method", "target",
                   "headers", "body", "state", "attempts", "next_attempt_at")
# A request's row and its payload (headers, body) live in two tables.
REQUEST_FROM = "requests JOIN request_bodies USING (seq)"


def open_db_ro(path, tc=None):
    """A read-only connection (fine while soldr runs: WAL). TEXT comes back as bytes."""
    if not os.path.exists(path):
        raise AssertionError("database %s does not exist" % path)
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    conn.text_factory = bytes
    if tc:
        tc.addCleanup(conn.close)
    return conn


def _dec(v):
    return v.decode("utf-8") if isinstance(v, bytes) else v


def row_to_dict(row):
    d = dict(zip(REQUEST_COLUMNS, row))
    for k in ("id", "webhook", "peer", "method", "state"):
        d[k] = _dec(d[k])
    for k in ("target", "headers", "body"):
        if isinstance(d[k], str):
            d[k] = d[k].encode("utf-8")
    return d


def fetch_request(conn, rid):
    row = conn.execute("SELECT %s FROM %s WHERE id = ?" % (", ".join(REQUEST_COLUMNS),
                                                           REQUEST_FROM), (rid,)).fetchone()
    return row_to_dict(row) if row else None


def fetch_requests(conn, where="1", params=()):
    rows = conn.execute("SELECT %s FROM %s WHERE %s ORDER BY seq"
                        % (", ".join(REQUEST_COLUMNS), REQUEST_FROM, where), params).fetchall()
    return [row_to_dict(r) for r in rows]


def count_requests(conn, where="1", params=()):
    return conn.execute("SELECT count(*) FROM requests WHERE %s" % where, params).fetchone()[0]


class WriteLock:
    """Holds the database write lock (BEGIN EXCLUSIVE) from another connection."""

    def __init__(self, path):
        self.path = path
        self.conn = None

    def acquire(self):
        deadline = time.monotonic() + 10
        while not os.path.exists(self.path):
            if time.monotonic() > deadline:
                raise AssertionError("database %s never appeared" % self.path)
            time.sleep(0.05)
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        self.conn.execute("BEGIN EXCLUSIVE")
        return self

    def release(self):
        if self.conn is not None:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# ---------------------------------------------------------------------------
# fallback records
# ---------------------------------------------------------------------------

def record_target(rec):
    if "target" in rec:
        return rec["target"].encode("utf-8")
    return base64.b64decode(rec["target_b64"])


def record_headers(rec):
    """[(name bytes, value bytes)] from a record (plain or base64 form)."""
    if "headers" in rec:
        return [(k.encode("utf-8"), v.encode("utf-8")) for k, v in rec["headers"]]
    return [(base64.b64decode(k), base64.b64decode(v)) for k, v in rec["headers_b64"]]


def record_body(rec):
    return base64.b64decode(rec["body_b64"])


# ---------------------------------------------------------------------------
# misc
# ---------------------------------------------------------------------------

def run_threads(fn, args_list, timeout=60):
    """Runs fn(*args) in one thread per item; returns results in order, re-raising
    the first exception."""
    results = [None] * len(args_list)
    errors = []

    def wrap(i, a):
        try:
            results[i] = fn(*a)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((i, e))

    threads = [threading.Thread(target=wrap, args=(i, a), daemon=True)
               for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise AssertionError("%d threads still running after %d s"
                             % (sum(t.is_alive() for t in threads), timeout))
    if errors:
        i, e = errors[0]
        raise AssertionError("thread %d failed: %r" % (i, e)) from e
    return results


class ClassScope:
    """Lets the harness run in setUpClass: cleanups become class cleanups."""

    def __init__(self, cls):
        self.cls = cls

    def addCleanup(self, fn, *args, **kw):
        self.cls.addClassCleanup(fn, *args, **kw)

    def fail(self, msg):
        raise AssertionError(msg)


class SoldrTestCase(unittest.TestCase):
    maxDiff = 4000

    def assertUUID7(self, uid, lo_ms=None, hi_ms=None):
        self.assertIsInstance(uid, str)
        self.assertRegex(uid, UUID7_RE)
        if lo_ms is not None:
            t = uuid7_ms(uid)
            self.assertGreaterEqual(t, lo_ms - 1000, "id %s older than the request" % uid)
            self.assertLessEqual(t, hi_ms + 1000, "id %s from the future" % uid)

    def assertAck(self, resp):
        """A 200 {"id": uuidv7} answer; returns the id."""
        self.assertEqual(resp.status, 200, resp)
        ctype = (resp.header("content-type") or "").split(";")[0].strip().lower()
        self.assertEqual(ctype, "application/json", resp)
        doc = resp.json()
        self.assertEqual(set(doc), {"id"}, resp)
        self.assertUUID7(doc["id"])
        return doc["id"]
