"""Test doubles for the soldr processor end-to-end tests (standard library only).

- DestServer: a scriptable HTTP/1.1 destination (keep-alive) that records every
  request it receives and answers each one per a script of behaviours.
- SmtpSink: a tiny hand-written SMTP server that records the messages it gets.
- Standard Webhooks signatures: make_secret(), sign(), verify().
- Small helpers: wait_until(), webhook_cli(), sqlite lookups of attempts.

Use them from a unittest.TestCase: DestServer(tc) and SmtpSink(tc) start at
once on 127.0.0.1 with a free port and stop in the test's cleanup.
"""

import base64
import collections
import email
import email.header
import hashlib
import hmac
import os
import random
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from soldr_harness import run_soldr

# ---------------------------------------------------------------------------
# behaviours of the destination
# ---------------------------------------------------------------------------


class Reply:
    """Answer `status` with `headers` and `body`, after `delay` seconds (a number,
    or a (lo, hi) pair for a uniformly random delay)."""

    def __init__(self, status=200, headers=(), body=b"", delay=0):
        self.status = status
        self.headers = list(headers)
        self.body = body if isinstance(body, bytes) else str(body).encode()
        self.delay = delay

    def __repr__(self):
        return "Reply(%d)" % self.status


class Hang:
    """Read the request, then answer nothing for `seconds` (or until the server stops)."""

    def __init__(self, seconds=60):
        self.seconds = seconds

    def __repr__(self):
        return "Hang(%s)" % self.seconds


class Close:
    """Read the request, then close the connection without answering."""

    def __repr__(self):
        return "Close()"


HANG = Hang()
CLOSE = Close()


def retry_after(status, seconds):
    return Reply(status, [("Retry-After", str(seconds))], b"slow down")


def behaviour(b):
    """Normalises shorthand: 200 -> Reply(200), 'hang', 'close', '500', ..."""
    if isinstance(b, (Reply, Hang, Close)) or callable(b):
        return b
    if isinstance(b, int):
        return Reply(b, body=b"status %d" % b)
    if isinstance(b, str):
        if b == "hang":
            return Hang()
        if b == "close":
            return Close()
        if b.isdigit():
            return Reply(int(b), body=b"status " + b.encode())
    raise ValueError("unknown behaviour %r" % (b,))


# ---------------------------------------------------------------------------
# the destination server
# ---------------------------------------------------------------------------


class Hit:
    """One request received by DestServer."""

    def __init__(self, n, method, target, headers, body, t):
        self.n = n                   # arrival order, from 0
        self.method = method         # str
        self.target = target         # str: path + query exactly as received
        self.path, _, self.query = target.partition("?")
        self.headers = headers       # [(name str, value str)] in order (latin-1 decoded)
        self.body = body             # bytes
        self.t = t                   # arrival time.time()
        self.behaviour = None        # what was done with it
        self.answered = False

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    @property
    def webhook_id(self):
        return self.header("webhook-id")

    def __repr__(self):
        return "<Hit #%d %s %s id=%s>" % (self.n, self.method, self.target, self.webhook_id)


class _DestHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a peer that resets or vanishes (soldr killed, curl timed out) is expected
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _DestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "soldr-test-dest"
    sys_version = ""
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on keep-alive

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        self.server.dest._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        self.server.dest._track(self.connection, False)

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        dest = self.server.dest
        body = self._read_body()
        headers = list(self.headers.items())
        hit = dest._record(self.command, self.path, headers, body)
        b = dest._choose(hit)
        hit.behaviour = b
        try:
            if isinstance(b, Hang):
                dest._stopping.wait(b.seconds)
                self.close_connection = True
                return
            if isinstance(b, Close):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            delay = b.delay
            if isinstance(delay, (tuple, list)):
                delay = random.uniform(*delay)
            if delay:
                if dest._stopping.wait(delay):
                    self.close_connection = True
                    return
            self.send_response(b.status)
            for n, v in b.headers:
                self.send_header(n, v)
            self.send_header("Content-Length", str(len(b.body)))
            # headers and body in one write
            self._headers_buffer.append(b"\r\n")
            if self.command != "HEAD":
                self._headers_buffer.append(b.body)
            self.flush_headers()
            hit.answered = True
        except OSError:
            self.close_connection = True
        finally:
            dest._done(hit)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class DestServer:
    """A scriptable destination on 127.0.0.1:<free port>.

    script(path, [b1, b2, ...], then=b): calls to `path` (query ignored) get
    b1, b2, ... in turn and `then` afterwards (default: the server default).
    set_default(b) / set_default(b, path=...): the behaviour when no script
    applies (initially 200). A behaviour is a Reply, HANG, CLOSE, a shorthand
    (200, "500", "hang", "close") or a callable(hit) returning one.
    """

    def __init__(self, tc=None, default=200):
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._default = behaviour(default)
        self._path_default = {}
        self._queues = collections.defaultdict(collections.deque)
        self._conns = set()
        self.hits = []
        self.ids = collections.Counter()
        self.inflight = 0
        self.httpd = _DestHTTPServer(("127.0.0.1", 0), _DestHandler)
        self.httpd.dest = self
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        if tc is not None:
            tc.addCleanup(self.stop)

    # -- configuration --------------------------------------------------------

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def script(self, path, behaviours, then=None):
        with self._lock:
            q = self._queues[path]
            q.clear()
            q.extend(behaviour(b) for b in behaviours)
            if then is not None:
                self._path_default[path] = behaviour(then)

    def set_default(self, b, path=None):
        with self._lock:
            if path is None:
                self._default = behaviour(b)
            else:
                self._path_default[path] = behaviour(b)

    # -- server side ------------------------------------------------------------

    def _track(self, conn, add):
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _record(self, method, target, headers, body):
        with self._lock:
            hit = Hit(len(self.hits), method, target, headers, body, time.time())
            self.hits.append(hit)
            wid = hit.webhook_id
            if wid is not None:
                self.ids[wid] += 1
            self.inflight += 1
            self._lock.notify_all()
            return hit

    def _choose(self, hit):
        with self._lock:
            q = self._queues.get(hit.path)
            if q:
                b = q.popleft()
            else:
                b = self._path_default.get(hit.path, self._default)
        while callable(b) and not isinstance(b, (Reply, Hang, Close)):
            b = behaviour(b(hit))
        return b

    def _done(self, hit):
        with self._lock:
            self.inflight -= 1
            self._lock.notify_all()

    def stop(self):
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- inspection -------------------------------------------------------------

    def hits_for(self, path=None, pred=None):
        with self._lock:
            hs = list(self.hits)
        if path is not None:
            hs = [h for h in hs if h.path == path]
        if pred is not None:
            hs = [h for h in hs if pred(h)]
        return hs

    def count(self, path=None):
        return len(self.hits_for(path))

    def id_counts(self):
        with self._lock:
            return collections.Counter(self.ids)

    def wait_hits(self, n, path=None, timeout=10.0, pred=None):
        """Waits until at least n matching hits arrived; returns them (maybe fewer
        on timeout: the caller asserts)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                hs = [h for h in self.hits if (path is None or h.path == path)
                      and (pred is None or pred(h))]
                left = deadline - time.monotonic()
                if len(hs) >= n or left <= 0:
                    return hs
                self._lock.wait(min(left, 0.2))


# ---------------------------------------------------------------------------
# SMTP sink
# ---------------------------------------------------------------------------


class Mail:
    def __init__(self, mail_from, rcpts, data, t):
        self.mail_from = mail_from   # str, without <>
        self.rcpts = rcpts           # [str], without <>
        self.data = data             # bytes, dot-unstuffed, CRLF line ends
        self.t = t

    def message(self):
        return email.message_from_bytes(self.data)

    @property
    def subject(self):
        raw = self.message().get("Subject", "")
        return str(email.header.make_header(email.header.decode_header(raw)))

    def text(self):
        """The decoded text of the message (all text parts)."""
        out = []
        for part in self.message().walk():
            if part.get_content_maintype() == "text":
                payload = part.get_payload(decode=True) or b""
                out.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
        return "\n".join(out)

    def __repr__(self):
        return "<Mail from=%s to=%s subject=%r>" % (self.mail_from, self.rcpts, self.subject)


def _addr(arg):
    arg = arg.strip()
    if "<" in arg and ">" in arg:
        return arg[arg.index("<") + 1:arg.index(">")]
    return arg.split()[0] if arg else ""


class _SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def _w(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        sink = self.server.sink
        with sink._lock:
            sink.connections += 1
        self._w("220 localhost soldr-test-smtp ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            cmdline = line.decode("latin-1").rstrip("\r\n")
            verb, _, arg = cmdline.partition(" ")
            verb = verb.upper()
            with sink._lock:
                sink.commands.append(cmdline)
            if verb == "EHLO":
                self._w("250-localhost greets you")
                self._w("250-8BITMIME")
                self._w("250 SIZE 10485760")
            elif verb == "HELO":
                self._w("250 localhost")
            elif verb == "MAIL":
                if sink._take_failure():
                    self._w("451 4.3.0 try again later")
                    continue
                mail_from, rcpts = _addr(arg.partition(":")[2]), []
                self._w("250 OK")
            elif verb == "RCPT":
                rcpts.append(_addr(arg.partition(":")[2]))
                self._w("250 OK")
            elif verb == "DATA":
                if mail_from is None or not rcpts:
                    self._w("503 need MAIL and RCPT first")
                    continue
                self._w("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    dl = self.rfile.readline(1 << 20)
                    if not dl:
                        return
                    if dl in (b".\r\n", b".\n"):
                        break
                    if dl.startswith(b".."):
                        dl = dl[1:]
                    lines.append(dl)
                sink._add(Mail(mail_from, rcpts, b"".join(lines), time.time()))
                mail_from, rcpts = None, []
                self._w("250 OK queued")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self._w("250 OK")
            elif verb == "NOOP":
                self._w("250 OK")
            elif verb == "QUIT":
                self._w("221 bye")
                return
            else:
                self._w("502 command not implemented")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a peer that resets or vanishes (soldr killed, curl timed out) is expected
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class SmtpSink:
    """SMTP on 127.0.0.1:<free port>; .messages holds every Mail received.
    fail_next(n): answer the next n MAIL commands with 451."""

    def __init__(self, tc=None):
        self._lock = threading.Condition()
        self.messages = []
        self.commands = []
        self.connections = 0
        self._failures = 0
        self.server = _SmtpServer(("127.0.0.1", 0), _SmtpHandler)
        self.server.sink = self
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        if tc is not None:
            tc.addCleanup(self.stop)

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def fail_next(self, n):
        with self._lock:
            self._failures = n

    def _take_failure(self):
        with self._lock:
            if self._failures > 0:
                self._failures -= 1
                return True
            return False

    def _add(self, mail):
        with self._lock:
            self.messages.append(mail)
            self._lock.notify_all()

    def mails(self):
        with self._lock:
            return list(self.messages)

    def wait_messages(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(min(left, 0.2))
            return list(self.messages)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Standard Webhooks signatures
# ---------------------------------------------------------------------------


def make_secret(key=None):
    """A 'whsec_' + base64(key) secret (random 24-byte key by default)."""
    key = key if key is not None else os.urandom(24)
    return "whsec_" + base64.b64encode(key).decode()


def secret_key(secret):
    s = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    return base64.b64decode(s)


def sign(secret, msg_id, timestamp, body):
    """The base64 HMAC-SHA256 of '{id}.{timestamp}.{body}' (no 'v1,' prefix)."""
    content = ("%s.%s." % (msg_id, timestamp)).encode() + body
    return base64.b64encode(hmac.new(secret_key(secret), content, hashlib.sha256).digest()).decode()


def verify(secret, msg_id, timestamp, body, signature_header):
    """True if any 'v1,<sig>' in the space-separated header matches."""
    if not signature_header:
        return False
    want = sign(secret, msg_id, timestamp, body)
    for part in signature_header.split():
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, want):
            return True
    return False


def verify_hit(secret, hit):
    return verify(secret, hit.header("webhook-id"), hit.header("webhook-timestamp"),
                  hit.body, hit.header("webhook-signature"))


# ---------------------------------------------------------------------------
# soldr helpers
# ---------------------------------------------------------------------------


def wait_until(fn, timeout=10.0, interval=0.05):
    """Polls fn() until it returns a truthy value; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def webhook_cli(tc, data_dir, verb, label, *args):
    """Runs `soldr webhook VERB LABEL ARGS --data-dir DIR` and asserts success."""
    p = run_soldr("webhook", verb, label, *args, "--data-dir", data_dir, timeout=30)
    tc.assertEqual(p.returncode, 0, "soldr webhook %s %s %s failed (%d):\n%s%s"
                   % (verb, label, " ".join(map(str, args)), p.returncode,
                      p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")))
    return p


ATTEMPT_COLUMNS = ("id", "request_seq", "started_at", "duration_ms", "status",
                   "response_headers", "response_body", "error", "manual")


def _s(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def fetch_attempts(conn, rid):
    """Attempt rows of request `rid` (oldest first) as dicts; error as str."""
    rows = conn.execute(
        "SELECT %s FROM attempts WHERE request_seq = (SELECT seq FROM requests WHERE id = ?) "
        "ORDER BY id" % ", ".join(ATTEMPT_COLUMNS),
        (rid,)).fetchall()
    out = []
    for r in rows:
        d = dict(zip(ATTEMPT_COLUMNS, r))
        d["error"] = _s(d["error"])
        out.append(d)
    return out


def request_state(conn, rid):
    """(state, attempts, last_status, next_attempt_at) of request `rid`, or None."""
    r = conn.execute("SELECT state, attempts, last_status, next_attempt_at FROM requests "
                     "WHERE id = ?", (rid,)).fetchone()
    if r is None:
        return None
    return (_s(r[0]), r[1], r[2], r[3])


def state_counts(conn):
    return {_s(s): n for s, n in conn.execute("SELECT state, count(*) FROM requests GROUP BY state")}
