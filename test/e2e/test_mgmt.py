"""End-to-end: the management API (src/mgmt/API.md) of `soldr serve` over HTTPS.

Each test starts its own soldr with the management port on a free loopback
port and a secret file, and (where deliveries matter) a real local
destination (sinks.DestServer). The API is spoken with http.client over TLS
(the certificate is the self-signed one soldr makes, so it is not verified);
the database is read directly to know what the API should say, and to check
that refused calls changed nothing.
"""

import base64
import http.client
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from soldr_harness import (  # noqa: E402
    Soldr, SoldrTestCase, free_port, make_tempdir, now_ms, open_db_ro, run_soldr)
from sinks import HANG, DestServer, Reply, wait_until  # noqa: E402

STATES = ("pending", "sending", "delivered", "failed", "orphaned")
UNKNOWN_ID = "01a201ce-b412-73fd-810e-bf91881a4000"  # well-formed, never stored


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # soldr's self-signed certificate
    return ctx


def uuid7(ms):
    """A lower-case UUIDv7 string for unix-ms `ms` (random bits after it)."""
    r = secrets.randbits(74)
    v = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (r >> 62) << 64 | 0b10 << 62 \
        | (r & ((1 << 62) - 1))
    h = "%032x" % v
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def s(v):
    return v.decode("utf-8") if isinstance(v, bytes) else v


class ApiResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # {lower-case name: value}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%s %r>" % (self.status, self.body[:300])


# ---------------------------------------------------------------------------
# Prometheus text format 0.0.4
# ---------------------------------------------------------------------------

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s=%s)(?:,%s=%s)*,?)?\})? (\S+)(?: (-?\d+))?$"
                       % (METRIC_NAME, LABEL_NAME, LABEL_VALUE, LABEL_NAME, LABEL_VALUE))
LABEL_RE = re.compile(r"(%s)=(%s)" % (LABEL_NAME, LABEL_VALUE))
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class PromError(AssertionError):
    pass


def prom_value(text):
    if text in ("+Inf", "Inf"):
        return float("inf")
    if text == "-Inf":
        return float("-inf")
    if text == "NaN":
        return float("nan")
    if not re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", text):
        raise PromError("bad sample value %r" % text)
    return float(text)


def parse_prometheus(text):
    """Parses the text exposition format; returns {family: {"type", "help",
    "samples": [(name, {labels}, value)]}}. Raises PromError on anything that
    breaks the format or the HELP/TYPE rules (one of each per family, TYPE
    before the family's samples, every sample in a TYPEd family, no duplicate
    series, histogram buckets cumulative with +Inf equal to _count)."""
    if not text.endswith("\n"):
        raise PromError("the text must end with a newline")
    fams = {}
    seen = set()
    started = set()

    def family_of(name):
        if name in fams:
            return name
        for suf in ("_bucket", "_sum", "_count"):
            base = name[:-len(suf)] if name.endswith(suf) else None
            if base and base in fams and fams[base]["type"] in ("histogram", "summary"):
                return base
        raise PromError("sample %s has no # TYPE line before it" % name)

    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % METRIC_NAME, line)
            if not m:
                if re.match(r"^# (HELP|TYPE)\b", line):
                    raise PromError("line %d: malformed %r" % (n, line))
                continue  # a plain comment
            kind, name, rest = m.groups()
            f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if kind == "TYPE":
                if rest not in TYPES:
                    raise PromError("line %d: unknown type %r" % (n, rest))
                if f["type"] is not None:
                    raise PromError("line %d: second TYPE for %s" % (n, name))
                if name in started:
                    raise PromError("line %d: TYPE of %s after its samples" % (n, name))
                f["type"] = rest
            else:
                if f["help"] is not None:
                    raise PromError("line %d: second HELP for %s" % (n, name))
                if not rest.strip():
                    raise PromError("line %d: empty HELP for %s" % (n, name))
                f["help"] = rest
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise PromError("line %d: not `name{labels} value`: %r" % (n, line))
        name, labels_text, value = m.group(1), m.group(2) or "", prom_value(m.group(3))
        labels = {}
        for lm in LABEL_RE.finditer(labels_text):
            if lm.group(1) in labels:
                raise PromError("line %d: label %s twice" % (n, lm.group(1)))
            labels[lm.group(1)] = lm.group(2)[1:-1]
        fam = family_of(name)
        if fams[fam]["type"] is None:
            raise PromError("line %d: %s has no TYPE" % (n, fam))
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise PromError("line %d: duplicate series %r" % (n, key))
        seen.add(key)
        started.add(fam)
        fams[fam]["samples"].append((name, labels, value))
    for name, f in fams.items():
        if f["type"] is None:
            raise PromError("%s has HELP but no TYPE" % name)
        if f["help"] is None:
            raise PromError("%s has TYPE but no HELP" % name)
        if f["type"] == "counter" and not name.endswith("_total"):
            raise PromError("counter %s does not end in _total" % name)
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
    return fams


def check_histogram(name, samples):
    groups = {}
    for sname, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            if "le" not in labels:
                raise PromError("%s bucket without le" % name)
            g["buckets"].append((prom_value(labels["le"]), value))
        elif sname == name + "_sum":
            g["sum"] = value
        elif sname == name + "_count":
            g["count"] = value
        else:
            raise PromError("%s: sample %s in a histogram" % (name, sname))
    for g in groups.values():
        b = g["buckets"]
        if not b or b[-1][0] != float("inf"):
            raise PromError("%s: no +Inf bucket last" % name)
        if [x for x, _ in b] != sorted(x for x, _ in b):
            raise PromError("%s: buckets out of order" % name)
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            raise PromError("%s: buckets not cumulative" % name)
        if g["count"] is None or g["sum"] is None or g["count"] != b[-1][1]:
            raise PromError("%s: _count/_sum missing or _count != +Inf bucket" % name)


def sample(fams, family, name=None, **labels):
    for sname, ls, v in fams[family]["samples"]:
        if sname == (name or family) and ls == labels:
            return v
    raise AssertionError("no sample %s%r in /metrics" % (name or family, labels))


# ---------------------------------------------------------------------------
# the test case
# ---------------------------------------------------------------------------

class MgmtCase(SoldrTestCase):
    """soldr with its management port; helpers to call the API."""

    def start(self, *args, dest=True):
        self.dest = DestServer(self) if dest else None
        tmp = make_tempdir(self, "soldr-e2e-mgmt-")
        self.secret = "mgmt-" + secrets.token_hex(24)
        self.secret_path = os.path.join(tmp, "secret")
        with open(self.secret_path, "w") as f:
            f.write(self.secret + "\n")
        self.mport = free_port()
        self.srv = Soldr(self, "--mgmt-listen", "127.0.0.1:%d" % self.mport,
                         "--mgmt-secret-file", self.secret_path, "--shutdown-grace", "1s",
                         *args).start()
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.api("GET", "/healthz", auth=None).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.fail("the management port did not answer\n" + self.srv.stderr_text()[-3000:])
            time.sleep(0.05)
        self.conn = self.srv.db()
        return self.srv

    # -- HTTP ----------------------------------------------------------------

    def api(self, method, path, body=None, raw=None, auth=True, headers=None, timeout=30):
        """One call on a fresh TLS connection. auth: True (the secret), None
        (no Authorization header) or a whole Authorization header value."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.mport, context=tls_context(),
                                           timeout=timeout)
        hdrs = dict(headers or {})
        if auth is True:
            hdrs["Authorization"] = "Bearer " + self.secret
        elif auth is not None:
            hdrs["Authorization"] = auth
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return ApiResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def call(self, method, path, body=None, status=200, **kw):
        r = self.api(method, path, body, **kw)
        self.assertEqual(r.status, status, "%s %s -> %r" % (method, path, r))
        if r.status == 204:
            return None
        ctype = r.headers.get("content-type", "")
        self.assertTrue(ctype.startswith("application/json"), ctype)
        return r.json()

    def error(self, method, path, body=None, status=422, field=None, **kw):
        r = self.api(method, path, body, **kw)
        self.assertEqual(r.status, status, "%s %s %r -> %r" % (method, path, body or kw, r))
        doc = r.json()
        self.assertIsInstance(doc.get("error"), str, doc)
        if field is not None:
            self.assertEqual(doc.get("field"), field, doc)
        return doc

    def raw_tls(self, data, read_timeout=10):
        """Sends exact bytes over TLS; returns what comes back until close."""
        sock = socket.create_connection(("127.0.0.1", self.mport), timeout=read_timeout)
        tls = tls_context().wrap_socket(sock)
        try:
            tls.sendall(data)
            out = b""
            while True:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLError, OSError):
                    break
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    m = re.search(rb"(?i)content-length: *(\d+)", head)
                    if m and len(rest) >= int(m.group(1)):
                        break
            return out
        finally:
            tls.close()

    # -- soldr ------------------------------------------------------------------

    def add_webhook(self, label, path="/", **settings):
        doc = dict(id=label, destination=self.dest.url(path), **settings)
        return self.call("POST", "/api/v1/webhooks", doc, status=201)

    def post(self, label, body=b"x", target="/", method="POST", headers=()):
        resp, _ = self.srv.send(label, body=body, method=method, target=target,
                                headers=list(headers))
        return self.assertAck(resp)

    def db_rows(self, sql, params=()):
        return self.conn.execute(sql, params).fetchall()

    def state_of(self, rid):
        r = self.db_rows("SELECT state FROM requests WHERE id = ?", (rid,))
        return s(r[0][0]) if r else None

    def wait_states(self, want, timeout=20):
        """Waits until count(state) per state equals `want` ({state: n})."""
        def counts():
            got = {s(k): v for k, v in self.db_rows(
                "SELECT state, count(*) FROM requests GROUP BY state")}
            return got if all(got.get(k, 0) == v for k, v in want.items()) else None
        if not wait_until(counts, timeout):
            self.srv.assert_alive()
            self.fail("states never became %r: %r\n%s" % (
                want, self.db_rows("SELECT state, count(*) FROM requests GROUP BY state"),
                self.srv.stderr_text()[-3000:]))

    def snapshot(self):
        """Every row of every table the API can change."""
        db = open_db_ro(self.srv.db_path)
        try:
            return {t: db.execute("SELECT * FROM %s ORDER BY 1, 2" % t).fetchall()
                    for t in ("webhooks", "requests", "request_bodies", "request_edits",
                              "attempts", "rollups", "alerts")}
        finally:
            db.close()

    def list_pages(self, query, limit, between=None):
        """Every page of GET /api/v1/requests; returns (summaries, pages)."""
        out, cursor, pages = [], None, 0
        while True:
            q = dict(query, limit=limit)
            if cursor:
                q["cursor"] = cursor
            doc = self.call("GET", "/api/v1/requests?" + "&".join(
                "%s=%s" % (k, urllib.parse.quote(str(v), safe=""))
                for k, v in q.items()))
            self.assertEqual(set(doc), {"requests", "next_cursor"})
            self.assertLessEqual(len(doc["requests"]), limit)
            if out and doc["requests"]:
                self.assertLess(doc["requests"][0]["id"], out[-1]["id"],
                                "page %d repeats or goes back" % (pages + 1))
            out += doc["requests"]
            pages += 1
            cursor = doc["next_cursor"]
            if cursor is None:
                return out, pages
            self.assertEqual(len(doc["requests"]), limit, "a short page with a next_cursor")
            self.assertEqual(cursor, doc["requests"][-1]["id"])
            if between:
                between()
            self.assertLess(pages, 10000)


# ---------------------------------------------------------------------------
# authentication
# ---------------------------------------------------------------------------

class AuthTest(MgmtCase):

    def routes(self, rid):
        return [
            ("DELETE", "/api/v1/webhooks/keep", None),
            ("GET", "/api/v1/webhooks", None),
            ("POST", "/api/v1/webhooks", {"id": "intruder", "destination": "http://x.test/"}),
            ("GET", "/api/v1/webhooks/keep", None),
            ("PUT", "/api/v1/webhooks/keep", {"destination": "http://evil.test/"}),
            ("PATCH", "/api/v1/webhooks/keep", {"active": False}),
            ("GET", "/api/v1/requests", None),
            ("GET", "/api/v1/requests?state=delivered", None),
            ("GET", "/api/v1/requests/" + rid, None),
            ("PATCH", "/api/v1/requests/" + rid, {"body": "tampered"}),
            ("POST", "/api/v1/requests/%s/resend" % rid, None),
            ("POST", "/api/v1/requests/resend", {"all": True}),
            ("GET", "/api/v1/stats", None),
            ("GET", "/metrics", None),
            ("GET", "/api/v1/no-such-route", None),
            ("GET", "/api/v1/../v1/webhooks", None),
        ]

    def test_every_route_needs_the_secret(self):
        self.start()
        self.add_webhook("keep")
        rid = self.post("keep", b"payload")
        self.wait_states({"delivered": 1})
        before = self.snapshot()
        hits = self.dest.count()
        wrong = self.secret[:-1] + ("A" if self.secret[-1] != "A" else "B")
        creds = [None, "Bearer " + wrong, "Bearer " + self.secret[:-1],
                 "Bearer " + self.secret + "x", "Bearer", "Bearer ", self.secret,
                 "Basic " + base64.b64encode(("admin:" + self.secret).encode()).decode(),
                 "Bearer  " + self.secret, "Token " + self.secret]
        for method, path, body in self.routes(rid):
            for cred in creds:
                with self.subTest(route="%s %s" % (method, path), auth=cred and cred[:12]):
                    r = self.api(method, path, body, auth=cred)
                    self.assertEqual(r.status, 401, r)
                    self.assertIn("error", r.json())
                    self.assertIn("bearer", r.headers.get("www-authenticate", "").lower())
                    self.assertNotIn(self.secret.encode(), r.body)
        # Two Authorization headers (one right) are refused too.
        r = self.raw_tls(("GET /api/v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                          "\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n"
                          % (wrong, self.secret)).encode())
        self.assertTrue(r.startswith(b"HTTP/1.1 401"), r[:200])
        self.assertEqual(self.snapshot(), before, "a refused call changed the database")
        time.sleep(0.3)
        self.assertEqual(self.dest.count(), hits, "a refused resend delivered")

        # /healthz and the UI need no secret; they hold no data.
        h = self.call("GET", "/healthz", auth=None)
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["database"], "ok")
        ui = self.api("GET", "/", auth=None)
        self.assertEqual(ui.status, 200)
        self.assertIn(b"<html", ui.body.lower())

        # With the secret every route answers something other than 401 (so
        # the 401s above are the auth check's doing), in the reverse order so
        # the webhook is deleted last.
        for method, path, body in reversed(self.routes(rid)):
            with self.subTest(route="%s %s" % (method, path), auth="right"):
                r = self.api(method, path, body)
                self.assertNotEqual(r.status, 401, r)
                self.assertLess(r.status, 500, r)
        # lower-case scheme is fine (RFC 9110: case-insensitive)
        self.assertEqual(self.api("GET", "/api/v1/stats", auth="bearer " + self.secret).status,
                         200)

    def test_no_secret_no_port(self):
        """A secret shorter than 32 characters keeps the port closed."""
        tmp = make_tempdir(self)
        path = os.path.join(tmp, "short")
        with open(path, "w") as f:
            f.write("too-short\n")
        port = free_port()
        srv = Soldr(self, "--mgmt-listen", "127.0.0.1:%d" % port, "--mgmt-secret-file", path)
        p = run_soldr("serve", "--data-dir", srv.data_dir, "--listen", "127.0.0.1:%d" % free_port(),
                      "--mgmt-listen", "127.0.0.1:%d" % port, "--mgmt-secret-file", path,
                      timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"32", p.stderr)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


# ---------------------------------------------------------------------------
# webhooks
# ---------------------------------------------------------------------------

class WebhooksTest(MgmtCase):

    def test_crud(self):
        self.start(dest=False)
        self.assertEqual(self.call("GET", "/api/v1/webhooks"), {"webhooks": []})
        t0 = now_ms()
        w = self.call("POST", "/api/v1/webhooks",
                      {"id": "shop-42", "destination": "https://example.org/hook",
                       "max_attempts": 3, "alert_email": "ops@example.org",
                       "signing_secret": "whsec_" + base64.b64encode(b"k" * 24).decode()},
                      status=201)
        self.assertEqual(w["id"], "shop-42")
        self.assertEqual(w["max_attempts"], 3)
        self.assertEqual(w["timeout_ms"], 30000)  # a default
        self.assertTrue(w["signing_secret_set"])
        self.assertNotIn("signing_secret", w)
        self.assertFalse(w["alerted"])
        self.assertIsNone(w["alerted_at"])
        self.assertGreaterEqual(w["created_at"], t0 - 1000)
        self.call("POST", "/api/v1/webhooks", {"id": "a-first", "destination": "http://a.test/"},
                  status=201)
        self.error("POST", "/api/v1/webhooks", {"id": "shop-42", "destination": "http://b.test/"},
                   status=409, field="id")
        ids = [x["id"] for x in self.call("GET", "/api/v1/webhooks")["webhooks"]]
        self.assertEqual(ids, ["a-first", "shop-42"])
        self.assertEqual(self.call("GET", "/api/v1/webhooks/shop-42"), w)

        p = self.call("PATCH", "/api/v1/webhooks/shop-42", {"active": False, "timeout_ms": 5000})
        self.assertFalse(p["active"])
        self.assertEqual(p["timeout_ms"], 5000)
        self.assertEqual(p["max_attempts"], 3)  # untouched
        self.assertTrue(p["signing_secret_set"])
        self.assertEqual(p["created_at"], w["created_at"])

        r = self.call("PUT", "/api/v1/webhooks/shop-42", {"destination": "http://c.test/x"})
        self.assertEqual(r["destination"], "http://c.test/x")
        self.assertEqual(r["max_attempts"], 10)  # replaced: defaults again
        self.assertTrue(r["active"])
        self.assertFalse(r["signing_secret_set"])
        self.assertEqual(self.call("GET", "/api/v1/webhooks/shop-42"), r)
        row = self.db_rows("SELECT destination, max_attempts FROM webhooks WHERE id = 'shop-42'")
        self.assertEqual((s(row[0][0]), row[0][1]), ("http://c.test/x", 10))

        self.assertIsNone(self.call("DELETE", "/api/v1/webhooks/shop-42", status=204))
        self.error("GET", "/api/v1/webhooks/shop-42", status=404)
        self.error("DELETE", "/api/v1/webhooks/shop-42", status=404)
        self.error("PATCH", "/api/v1/webhooks/shop-42", {"active": True}, status=404)
        self.assertEqual([x["id"] for x in self.call("GET", "/api/v1/webhooks")["webhooks"]],
                         ["a-first"])


# ---------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------

def dest_behaviour(hit):
    if hit.path.startswith("/bad"):
        return Reply(500, body=b"broken")
    if hit.path.startswith("/hang"):
        return HANG
    return Reply(200, body=b"ok")


class ListTest(MgmtCase):

    def seed(self):
        """Requests in every state: good (delivered, 200), bad (failed, 500),
        hang (1 sending, 3 pending behind it: concurrency 1), ghost
        (orphaned), and one replayed from an hour ago (inserted last)."""
        self.start()
        self.dest.set_default(dest_behaviour)
        self.add_webhook("good", "/good")
        self.add_webhook("bad", "/bad", max_attempts=1)
        self.add_webhook("hang", "/hang", max_concurrency=1, timeout_ms=600000)
        self.t_start = now_ms()
        for i in range(12):
            self.post("good", b'{"i":%d}' % i, target="/g/%d?k=%d" % (i, i % 3))
            if i == 5:
                time.sleep(0.05)
                self.t_mid = now_ms()
                time.sleep(0.05)
        for i in range(5):
            self.post("bad", b"b%d" % i, target="/b/%d?k=%d" % (i, i % 3))
        for i in range(4):
            self.post("hang", b"h%d" % i, target="/h/%d" % i)
        for i in range(3):
            self.post("ghost", b"o%d" % i, target="/o/%d" % i)
        self.old_at = now_ms() - 3600 * 1000
        self.old_id = uuid7(self.old_at)
        rec = {"type": "soldr.request", "v": 1, "id": self.old_id, "received_at": self.old_at,
               "webhook": "ghost", "peer": "192.0.2.7:4000", "host": "ghost.wh.localhost",
               "method": "POST", "target": "/replayed?k=1", "headers": [["Host", "ghost"]],
               "body_b64": base64.b64encode(b"old").decode()}
        p = run_soldr("replay", "-", "--data-dir", self.srv.data_dir,
                      input=(json.dumps(rec) + "\n").encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        # A row written by another process does not wake the processor; an
        # ingest commit does.
        self.post("ghost", b"wake", target="/o/wake")
        self.wait_states({"delivered": 12, "failed": 5, "sending": 1, "pending": 3,
                          "orphaned": 5})

    def expected(self, where="1", params=()):
        return [s(r[0]) for r in self.db_rows(
            "SELECT id FROM requests WHERE %s ORDER BY id DESC" % where, params)]

    def test_each_filter_matches_the_database(self):
        self.seed()
        cases = [
            ({}, "1", ()),
            ({"webhook": "good"}, "webhook = ?", ("good",)),
            ({"webhook": "nobody"}, "webhook = ?", ("nobody",)),
            ({"from": self.t_mid}, "received_at >= ?", (self.t_mid,)),
            ({"to": self.t_mid}, "received_at < ?", (self.t_mid,)),
            ({"from": self.t_start, "to": self.t_mid}, "received_at >= ? AND received_at < ?",
             (self.t_start, self.t_mid)),
            ({"to": self.t_start}, "received_at < ?", (self.t_start,)),  # the replayed one
            ({"status": 500}, "last_status = ?", (500,)),
            ({"status": 200}, "last_status = ?", (200,)),
            ({"q": "k=1"}, "instr(target, ?) > 0", ("k=1",)),
            ({"q": "/b/"}, "instr(target, ?) > 0", ("/b/",)),
            ({"q": "%"}, "instr(target, ?) > 0", ("%",)),
            ({"webhook": "good", "from": self.t_mid, "q": "k=0", "state": "delivered",
              "status": 200},
             "webhook = 'good' AND received_at >= ? AND instr(target, 'k=0') > 0 AND "
             "state = 'delivered' AND last_status = 200", (self.t_mid,)),
        ]
        for st in STATES:
            cases.append(({"state": st}, "state = ?", (st,)))
            cases.append(({"state": st, "webhook": "hang"}, "state = ? AND webhook = 'hang'",
                          (st,)))
        for query, where, params in cases:
            want = self.expected(where, params)
            for limit in (1, 4, 500):
                with self.subTest(query=query, limit=limit):
                    got, pages = self.list_pages(query, limit)
                    self.assertEqual([r["id"] for r in got], want)
                    self.assertEqual(pages, max(1, -(-len(want) // limit)))
        self.assertTrue(any(len(self.expected(w, p)) == 0 for _, w, p in cases))
        # The replayed request (the last row inserted) is listed by its age: last.
        everything, _ = self.list_pages({}, 500)
        self.assertEqual(everything[-1]["id"], self.old_id)
        self.assertEqual(everything[-1]["received_at"], self.old_at)

    def test_summary_fields(self):
        self.seed()
        got, _ = self.list_pages({}, 500)
        rows = {s(r[0]): r for r in self.db_rows(
            "SELECT id, webhook, received_at, method, target, state, attempts, last_status, "
            "next_attempt_at FROM requests")}
        self.assertEqual(len(got), len(rows))
        for doc in got:
            r = rows[doc["id"]]
            self.assertEqual(set(doc), {"id", "webhook", "received_at", "method", "target",
                                        "state", "attempts", "last_status", "next_attempt_at",
                                        "edited"})
            self.assertEqual((doc["webhook"], doc["received_at"], doc["method"], doc["target"],
                              doc["state"], doc["attempts"], doc["last_status"],
                              doc["next_attempt_at"], doc["edited"]),
                             (s(r[1]), r[2], s(r[3]), s(r[4]), s(r[5]), r[6], r[7], r[8], False))

    def test_bad_queries(self):
        self.start(dest=False)
        for q, field in [("limit=0", "limit"), ("limit=501", "limit"), ("limit=abc", "limit"),
                         ("limit=-1", "limit"), ("limit=1.5", "limit"), ("state=bogus", "state"),
                         ("state=PENDING", "state"), ("from=-1", "from"), ("to=1e3", "to"),
                         ("from=99999999999999999999", "from"), ("status=99", "status"),
                         ("status=600", "status"), ("cursor=abc", "cursor"),
                         ("cursor=" + UNKNOWN_ID.upper(), "cursor"),
                         ("webhook=Not_A_Label", "webhook"), ("stat=failed", "stat"),
                         ("state=failed&state=pending", "state"), ("q=%zz", "q"),
                         ("q=" + "x" * 1100, "q"), ("q=%00", "q")]:
            with self.subTest(q=q):
                self.error("GET", "/api/v1/requests?" + q, status=400, field=field)
        self.assertEqual(self.call("GET", "/api/v1/requests?limit=500&state=&q="),
                         {"requests": [], "next_cursor": None})
        self.assertEqual(self.call("GET", "/api/v1/requests?cursor=" + UNKNOWN_ID),
                         {"requests": [], "next_cursor": None})

    def test_pages_have_no_gaps_or_repeats_while_requests_arrive(self):
        self.start()
        self.add_webhook("flow")
        first_ids = {self.post("flow", b"%d" % i, target="/f/%d" % i) for i in range(60)}
        stop = threading.Event()
        arrived = []
        errors = []

        def writer():
            try:
                while not stop.is_set():
                    arrived.append(self.post("flow", b"late", target="/late"))
                    time.sleep(0.005)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            wait_until(lambda: len(arrived) >= 5, 10)
            for query in ({}, {"webhook": "flow"}):
                got, pages = self.list_pages(query, 7, between=lambda: time.sleep(0.03))
                ids = [r["id"] for r in got]
                self.assertEqual(len(ids), len(set(ids)), "a request on two pages")
                self.assertEqual(ids, sorted(ids, reverse=True))
                self.assertGreater(pages, 5)
                top = ids[0]
                # Exactly what existed when the first page was read: everything
                # at or below its first id, nothing missing (no gaps).
                want = self.expected("id <= ?", (top,))
                self.assertEqual(ids, want)
                self.assertTrue(first_ids <= set(ids))
                # ...and requests kept arriving meanwhile, above the first page.
                n_before = len(arrived)
                wait_until(lambda: len(arrived) > n_before + 2, 10)
                newest = self.call("GET", "/api/v1/requests?limit=1")["requests"][0]["id"]
                self.assertGreater(newest, top)
        finally:
            stop.set()
            t.join(10)
        self.assertEqual(errors, [])
        self.assertGreater(len(arrived), 10)


# ---------------------------------------------------------------------------
# edit and resend
# ---------------------------------------------------------------------------

class EditResendTest(MgmtCase):

    def test_edit_then_resend_delivers_the_edit(self):
        self.start()
        self.dest.set_default(dest_behaviour)
        self.add_webhook("ed")
        orig_headers = [("Content-Type", "application/json"), ("X-Orig", "1")]
        rid = self.post("ed", b'{"v":1}', target="/orig?a=1", headers=orig_headers)
        hits = self.dest.wait_hits(1)
        self.assertEqual(len(hits), 1)
        self.assertEqual((hits[0].method, hits[0].target, hits[0].body),
                         ("POST", "/orig?a=1", b'{"v":1}'))
        self.wait_states({"delivered": 1})
        received = self.call("GET", "/api/v1/requests/" + rid)["request"]
        self.assertIsNone(received["edited"])
        body_row = self.db_rows("SELECT * FROM request_bodies")

        edit = {"method": "PUT", "target": "/edited/path?b=2",
                "headers": [["Content-Type", "text/plain; charset=utf-8"], ["X-Edited", "yes"],
                            ["X-Edited", "twice"]],
                "body": "edited body \u00fc\n"}
        doc = self.call("PATCH", "/api/v1/requests/" + rid, edit)
        r = doc["request"]
        for k in ("id", "method", "target", "headers", "body", "body_b64", "peer",
                  "received_at", "webhook"):
            self.assertEqual(r[k], received[k], "field %s of the original changed" % k)
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["body"], '{"v":1}')
        e = r["edited"]
        self.assertEqual((e["method"], e["target"], e["headers"], e["body"], e["body_b64"]),
                         ("PUT", "/edited/path?b=2", edit["headers"], edit["body"], None))
        self.assertAlmostEqual(e["edited_at"], now_ms(), delta=10000)
        self.assertEqual(self.db_rows("SELECT * FROM request_bodies"), body_row)
        self.assertEqual(self.db_rows("SELECT method, target FROM requests"),
                         [(b"POST", b"/orig?a=1")])
        listed = self.call("GET", "/api/v1/requests")["requests"][0]
        self.assertTrue(listed["edited"])
        self.assertEqual(self.dest.count(), 1, "an edit alone must not deliver")

        rs = self.call("POST", "/api/v1/requests/%s/resend" % rid, status=202)
        self.assertEqual((rs["id"], rs["state"]), (rid, "pending"))
        self.assertAlmostEqual(rs["resend_requested_at"], now_ms(), delta=10000)
        hits = self.dest.wait_hits(2)
        self.assertEqual(len(hits), 2, "the resend was not delivered")
        h = hits[1]
        self.assertEqual((h.method, h.target), ("PUT", "/edited/path?b=2"))
        self.assertEqual(h.body, edit["body"].encode())
        self.assertEqual(h.header_all("X-Edited"), ["yes", "twice"])
        self.assertEqual(h.header("Content-Type"), "text/plain; charset=utf-8")
        self.assertIsNone(h.header("X-Orig"))
        self.assertEqual(h.header("webhook-id"), rid)

        self.wait_states({"delivered": 1})
        doc = self.call("GET", "/api/v1/requests/" + rid)
        r = doc["request"]
        self.assertEqual((r["method"], r["target"], r["body"]), ("POST", "/orig?a=1", '{"v":1}'))
        self.assertEqual([tuple(x) for x in r["headers"]],
                         [tuple(x) for x in received["headers"]])
        self.assertEqual(r["edited"]["target"], "/edited/path?b=2")
        self.assertEqual([a["manual"] for a in doc["attempts"]], [False, True])
        self.assertEqual([a["status"] for a in doc["attempts"]], [200, 200])
        self.assertLess(doc["attempts"][0]["id"], doc["attempts"][1]["id"])
        self.assertEqual(doc["attempts"][1]["response_body"], "ok")

        # A second edit applies to the edited version: only the body changes.
        blob = b"\x00\x01\xffbinary"
        doc = self.call("PATCH", "/api/v1/requests/" + rid,
                        {"body_b64": base64.b64encode(blob).decode()})
        e = doc["request"]["edited"]
        self.assertEqual((e["method"], e["target"], e["headers"]),
                         ("PUT", "/edited/path?b=2", edit["headers"]))
        self.assertIsNone(e["body"])
        self.assertEqual(base64.b64decode(e["body_b64"]), blob)
        self.call("POST", "/api/v1/requests/%s/resend" % rid, status=202)
        hits = self.dest.wait_hits(3)
        self.assertEqual(len(hits), 3)
        self.assertEqual((hits[2].method, hits[2].body), ("PUT", blob))
        self.assertEqual(self.dest.id_counts()[rid], 3)

    def test_resend_while_sending_is_409_and_unknown_is_404(self):
        self.start()
        self.dest.set_default(dest_behaviour)
        self.add_webhook("hang", "/hang", timeout_ms=600000)
        rid = self.post("hang", b"x")
        wait_until(lambda: self.state_of(rid) == "sending", 10)
        self.assertEqual(self.state_of(rid), "sending")
        before = self.snapshot()
        self.error("POST", "/api/v1/requests/%s/resend" % rid, status=409)
        self.error("POST", "/api/v1/requests/%s/resend" % UNKNOWN_ID, status=404)
        self.error("POST", "/api/v1/requests/not-an-id/resend", status=404)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.dest.count(), 1)


class BulkResendTest(MgmtCase):

    def test_bulk_resend_with_a_filter(self):
        self.start()
        broken = {"on": True}
        self.dest.set_default(lambda hit: Reply(500) if broken["on"] and
                              hit.path.startswith("/bulk") else Reply(200, body=b"ok"))
        self.add_webhook("bulk", "/bulk", max_attempts=1)
        self.add_webhook("other", "/other")
        bulk = [self.post("bulk", b"b%d" % i, target="/t/%d" % i) for i in range(5)]
        bulk.append(self.post("bulk", b"skip", target="/skip"))
        other = [self.post("other", b"o%d" % i, target="/t/%d" % i) for i in range(3)]
        self.wait_states({"failed": 6, "delivered": 3})
        hits0 = self.dest.count()
        before = self.snapshot()
        for body, field in [({}, "all"), ({"all": False}, "all"), ({"all": "yes"}, "all"),
                            ({"state": "nope"}, "state"), ({"status": "500"}, "status"),
                            ({"status": 99}, "status"), ({"from": -5}, "from"),
                            ({"to": 1.5}, "to"), ({"webhook": "BAD_x"}, "webhook"),
                            ({"q": 5}, "q"), ({"bogus": 1, "webhook": "bulk"}, "bogus")]:
            with self.subTest(body=body):
                self.error("POST", "/api/v1/requests/resend", body, status=422, field=field)
        self.error("POST", "/api/v1/requests/resend", raw=b'{"webhook": ', status=400)
        self.error("POST", "/api/v1/requests/resend", raw=b'["all"]', status=400)
        self.assertEqual(self.snapshot(), before)

        broken["on"] = False
        r = self.call("POST", "/api/v1/requests/resend",
                      {"webhook": "bulk", "state": "failed", "q": "/t/", "status": 500})
        self.assertEqual(r, {"resent": 5})
        hs = self.dest.wait_hits(hits0 + 5)
        self.assertEqual(len(hs), hits0 + 5)
        resent_ids = sorted(h.header("webhook-id") for h in hs[hits0:])
        self.assertEqual(resent_ids, sorted(bulk[:5]))
        self.wait_states({"failed": 1, "delivered": 8})
        for rid in bulk[:5]:
            atts = self.call("GET", "/api/v1/requests/" + rid)["attempts"]
            self.assertEqual([(a["status"], a["manual"]) for a in atts],
                             [(500, False), (200, True)])
        time.sleep(0.3)
        self.assertEqual(self.dest.count(), hits0 + 5, "more than the filter was resent")

        # A time window: only the requests of `other` received in it.
        t_from = self.db_rows("SELECT received_at FROM requests WHERE id = ?", (other[1],))[0][0]
        r = self.call("POST", "/api/v1/requests/resend", {"webhook": "other", "from": t_from})
        self.assertEqual(r, {"resent": 2})
        hs = self.dest.wait_hits(hits0 + 7)
        self.assertEqual(sorted(h.header("webhook-id") for h in hs[hits0 + 5:]),
                         sorted(other[1:]))
        self.wait_states({"delivered": 8, "failed": 1})

        # Everything, said out loud.
        n = self.db_rows("SELECT count(*) FROM requests WHERE state != 'sending'")[0][0]
        r = self.call("POST", "/api/v1/requests/resend", {"all": True})
        self.assertEqual(r, {"resent": n})
        self.assertEqual(len(self.dest.wait_hits(hits0 + 7 + n)), hits0 + 7 + n)
        self.wait_states({"delivered": 9})


# ---------------------------------------------------------------------------
# stats and metrics
# ---------------------------------------------------------------------------

class MetricsTest(MgmtCase):

    def test_prometheus_parser_catches_breakage(self):
        good = ("# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n"
                "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                "h_sum 1.5\nh_count 2\n")
        parse_prometheus(good)
        bad = [good[:-1], good.replace("a_total{x=\"1\"} 3", "a_total{x=1} 3"),
               good.replace("a_total{x=\"1\"} 3", "a_total 3 4 5"),
               good.replace("# TYPE a_total counter\n", ""),
               good.replace("# HELP a_total A.\n", ""),
               good + "a_total{x=\"1\"} 4\n",
               good.replace("h_count 2", "h_count 3"),
               good.replace("h_bucket{le=\"1\"} 1", "h_bucket{le=\"1\"} 5"),
               good + "# TYPE a_total counter\n",
               good.replace("counter", "countr"),
               good + "b 1\n",
               good.replace(" 3\n", " three\n")]
        for text in bad:
            with self.subTest(text=text):
                with self.assertRaises(PromError):
                    parse_prometheus(text)

    def test_metrics_and_stats(self):
        self.start()
        self.dest.set_default(dest_behaviour)
        self.add_webhook("m-one", "/good")
        self.add_webhook("m-two", "/bad", max_attempts=1)
        for i in range(3):
            self.post("m-one", b"%d" % i)
        for i in range(2):
            self.post("m-two", b"%d" % i)
        self.post("m-ghost", b"?")
        self.wait_states({"delivered": 3, "failed": 2, "orphaned": 1})

        r = self.api("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"),
                        r.headers)
        fams = parse_prometheus(r.body.decode("utf-8"))
        self.assertEqual(fams["soldr_requests_received_total"]["type"], "counter")
        self.assertEqual(sample(fams, "soldr_requests_received_total", webhook="m-one"), 3)
        self.assertEqual(sample(fams, "soldr_requests_received_total", webhook="m-two"), 2)
        self.assertEqual(sample(fams, "soldr_requests_received_total", webhook="m-ghost"), 1)
        self.assertEqual(sample(fams, "soldr_deliveries_total", webhook="m-one",
                                outcome="delivered"), 3)
        self.assertEqual(sample(fams, "soldr_deliveries_total", webhook="m-two",
                                outcome="failed"), 2)
        self.assertEqual(sample(fams, "soldr_deliveries_total", webhook="m-ghost",
                                outcome="orphaned"), 1)
        self.assertEqual(fams["soldr_queue_pending"]["type"], "gauge")
        self.assertEqual(sample(fams, "soldr_queue_pending", webhook="m-one"), 0)
        self.assertEqual(fams["soldr_ingest_latency_seconds"]["type"], "histogram")
        self.assertGreaterEqual(sample(fams, "soldr_ingest_latency_seconds",
                                       "soldr_ingest_latency_seconds_count"), 6)
        for fam in ("soldr_delivery_latency_seconds", "soldr_commit_batch_size",
                    "soldr_fallback_records_total"):
            self.assertIn(fam, fams)

        st = self.call("GET", "/api/v1/stats")
        self.assertEqual(set(st), {"totals", "webhooks", "days", "pending",
                                   "oldest_pending_age_ms"})
        self.assertEqual(st["totals"]["received"], 6)
        self.assertEqual(st["totals"]["delivered"], 3)
        self.assertEqual(st["totals"]["failed"], 2)
        self.assertEqual(st["totals"]["orphaned"], 1)
        self.assertEqual(st["pending"], 0)
        self.assertIsNone(st["oldest_pending_age_ms"])
        self.assertEqual([w["webhook"] for w in st["webhooks"]], ["m-ghost", "m-one", "m-two"])
        self.assertEqual(len(st["days"]), 30)
        today = time.strftime("%Y-%m-%d", time.gmtime())
        self.assertEqual(st["days"][-1]["day"], today)
        self.assertEqual(st["days"][-1]["received"], 6)

        # A request waiting shows in both, live.
        self.add_webhook("m-wait", "/hang", max_concurrency=1, timeout_ms=600000)
        self.post("m-wait", b"1")
        self.post("m-wait", b"2")
        wait_until(lambda: self.call("GET", "/api/v1/stats")["pending"] == 2, 10)
        st = self.call("GET", "/api/v1/stats")
        self.assertEqual(st["pending"], 2)
        self.assertIsInstance(st["oldest_pending_age_ms"], (int, float))
        fams = parse_prometheus(self.api("GET", "/metrics").body.decode())
        self.assertEqual(sample(fams, "soldr_queue_pending", webhook="m-wait"), 2)
        self.assertGreater(sample(fams, "soldr_queue_oldest_pending_age_seconds"), 0)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

TRAVERSALS = ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
              "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/%2E%2E/%2E%2E/etc/passwd",
              "/.%2e/.%2e/etc/passwd", "/index.html/../../../etc/passwd",
              "/views/../../../etc/passwd", "/%252e%252e/%252e%252e/etc/passwd",
              "/..\\..\\etc\\passwd", "/....//....//etc/passwd", "//etc/passwd",
              "/etc/passwd", "/./index.html/..", "/%2fetc%2fpasswd"]


class BadInputTest(MgmtCase):

    def check_traversal(self, canary=None):
        for path in TRAVERSALS + (["/../canary.txt", "/%2e%2e/canary.txt", "/..%2fcanary.txt",
                                   "/leak.txt", "/dir", "/dir/"] if canary else []):
            with self.subTest(path=path):
                r = self.api("GET", path, auth=None)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"root:", r.body)
                if canary:
                    self.assertNotIn(canary, r.body)
        # Under /api/ the traversal is a route lookup: 401 without, 404 with the secret.
        r = self.api("GET", "/api/v1/../../etc/passwd", auth=None)
        self.assertEqual(r.status, 401)
        r = self.api("GET", "/api/v1/%2e%2e/%2e%2e/etc/passwd")
        self.assertEqual(r.status, 404)
        self.assertNotIn(b"root:", r.body)
        r = self.api("GET", "/%00/etc/passwd", auth=None)
        self.assertIn(r.status, (400, 404))

    def test_static_route_serves_only_the_ui(self):
        """SOLDR_UI_DIR (files read from disk): nothing outside it, no symlinks."""
        tmp = make_tempdir(self)
        ui = os.path.join(tmp, "ui")
        os.makedirs(os.path.join(ui, "dir"))
        with open(os.path.join(ui, "index.html"), "w") as f:
            f.write("<html>ui</html>")
        canary = b"CANARY-" + secrets.token_hex(8).encode()
        with open(os.path.join(tmp, "canary.txt"), "wb") as f:
            f.write(canary)
        os.symlink(os.path.join(tmp, "canary.txt"), os.path.join(ui, "leak.txt"))
        self.start("--ui-dir", ui, dest=False)
        self.assertEqual(self.api("GET", "/", auth=None).body, b"<html>ui</html>")
        self.assertEqual(self.api("GET", "/index.html", auth=None).status, 200)
        self.check_traversal(canary)

    def test_bad_input_changes_nothing(self):
        self.start("--max-body", "4096")
        self.add_webhook("keep")
        rid = self.post("keep", b"original", target="/o")
        self.wait_states({"delivered": 1})
        before = self.snapshot()
        hits = self.dest.count()
        R = "/api/v1/requests/" + rid
        W = "/api/v1/webhooks"
        dest = self.dest.url("/")

        # malformed JSON, or not an object
        for path, method in [(W, "POST"), (W + "/keep", "PUT"), (W + "/keep", "PATCH"),
                             (R, "PATCH"), ("/api/v1/requests/resend", "POST")]:
            for raw in (b'{"id": ', b"", b"[1, 2]", b'"text"', b"nul", b"{} {}", b"\xff\xfe",
                        b'{"body": "a\\u0000b"}', b'{"id": "a\x00b"}', b'{}x', b'{}\n{}',
                        b'{"a": 1,}'):
                with self.subTest(path=path, raw=raw):
                    self.error(method, path, raw=raw, status=400)
        # wrong types and values, unknown or read-only fields: 422 with the field
        cases = [
            ("POST", W, {"id": 5, "destination": dest}, "id"),
            ("POST", W, {"id": "Bad_Label", "destination": dest}, "id"),
            ("POST", W, {"id": "new-1", "destination": "ftp://x/"}, "destination"),
            ("POST", W, {"id": "new-1", "destination": dest, "active": "yes"}, "active"),
            ("POST", W, {"id": "new-1", "destination": dest, "bogus": 1}, "bogus"),
            ("POST", W, {"id": "new-1", "destination": dest, "created_at": 1}, "created_at"),
            ("POST", W, {"id": "new-1", "destination": dest, "alerted": False}, "alerted"),
            ("POST", W, {"id": "new-1"}, "destination"),
            ("PUT", W + "/keep", {"active": False}, "destination"),
            ("PATCH", W + "/keep", {"max_attempts": -1}, "max_attempts"),
            ("PATCH", W + "/keep", {"max_attempts": 1.5}, "max_attempts"),
            ("PATCH", W + "/keep", {"max_attempts": "3"}, "max_attempts"),
            ("PATCH", W + "/keep", {"max_attempts": 0}, "max_attempts"),
            ("PATCH", W + "/keep", {"id": "other"}, "id"),
            ("PATCH", R, {"method": 5}, "method"),
            ("PATCH", R, {"method": "GE T"}, "method"),
            ("PATCH", R, {"method": ""}, "method"),
            ("PATCH", R, {"target": "no-slash"}, "target"),
            ("PATCH", R, {"target": "/a b"}, "target"),
            ("PATCH", R, {"target": "/a\r\nX: 1"}, "target"),
            ("PATCH", R, {"target": None}, "target"),
            ("PATCH", R, {"headers": "X: 1"}, "headers"),
            ("PATCH", R, {"headers": [["Bad Name", "v"]]}, "headers"),
            ("PATCH", R, {"headers": [["X", "a\r\nInjected: 1"]]}, "headers"),
            ("PATCH", R, {"headers": [["X", "a\nb"]]}, "headers"),
            ("PATCH", R, {"headers": [["X"]]}, "headers"),
            ("PATCH", R, {"headers": [["X", 5]]}, "headers"),
            ("PATCH", R, {"headers": [["X", "1", "2"]]}, "headers"),
            ("PATCH", R, {"headers": {"X": "1"}}, "headers"),
            ("PATCH", R, {"body": 5}, "body"),
            ("PATCH", R, {"body": None}, "body"),
            ("PATCH", R, {"body_b64": "!!!"}, "body_b64"),
            ("PATCH", R, {"body": "a", "body_b64": "YQ=="}, "body_b64"),
            ("PATCH", R, {"bogus": 1}, "bogus"),
            ("PATCH", R, {"method": "PUT", "edited_at": 5}, "edited_at"),
            ("PATCH", R, {"state": "pending"}, "state"),
            ("PATCH", R, {}, None),
        ]
        for method, path, body, field in cases:
            with self.subTest(method=method, path=path, body=body):
                self.error(method, path, body, status=422, field=field)
        # too large
        self.error("POST", W, {"id": "big", "destination": dest, "alert_email": "a" * 70000},
                   status=413)
        self.error("PATCH", R, {"body": "x" * 5000}, status=413, field="body")
        self.error("PATCH", R, {"body_b64": base64.b64encode(b"\x00" * 5000).decode()},
                   status=413, field="body_b64")
        self.error("PATCH", R, {"headers": [["X-Big", "v" * 40000]]}, status=422,
                   field="headers")
        huge = self.raw_tls(("PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                             "Content-Type: application/json\r\nContent-Length: 900000000\r\n\r\n"
                             % (R, self.secret)).encode())
        self.assertTrue(huge.startswith(b"HTTP/1.1 413"), huge[:200])
        # no such ids, no such routes, wrong methods
        for rid_bad in (UNKNOWN_ID, "nope", "%2e%2e", UNKNOWN_ID.upper(), rid + "0"):
            with self.subTest(id=rid_bad):
                self.error("GET", "/api/v1/requests/" + rid_bad, status=404)
                self.error("PATCH", "/api/v1/requests/" + rid_bad, {"method": "PUT"},
                           status=404)
                self.error("POST", "/api/v1/requests/%s/resend" % rid_bad, status=404)
        for path in (W + "/nope", W + "/NOPE", W + "/" + "a" * 100):
            self.error("GET", path, status=404)
            self.error("PATCH", path, {"active": False}, status=404)
            self.error("DELETE", path, status=404)
        self.error("GET", "/api/v1/nothing", status=404)
        self.error("GET", "/api/v2/webhooks", status=404)
        self.error("DELETE", "/api/v1/requests", status=405)
        self.error("PUT", R, {"method": "PUT"}, status=405)
        self.error("GET", "/api/v1/requests/%s/resend" % rid, status=405)
        self.check_traversal()

        self.assertEqual(self.snapshot(), before, "refused input changed the database")
        time.sleep(0.3)
        self.assertEqual(self.dest.count(), hits)
        doc = self.call("GET", R)
        self.assertIsNone(doc["request"]["edited"])
        self.assertEqual(doc["request"]["body"], "original")
        self.assertEqual([w["id"] for w in self.call("GET", W)["webhooks"]], ["keep"])
        self.srv.assert_alive()
        # ...and a good edit still works afterwards.
        self.call("PATCH", R, {"body": "y" * 4096})


if __name__ == "__main__":
    unittest.main()
