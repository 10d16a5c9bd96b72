"""End-to-end: the processor of `soldr serve` (delivery, retries, alerts, orphans).

Each test starts its own soldr, a scriptable destination server (sinks.DestServer)
and, where alerts matter, an SMTP sink; webhooks are set up with the
`soldr webhook` command line while soldr runs.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from soldr_harness import (  # noqa: E402
    Req, Soldr, SoldrTestCase, chunked, run_threads)
from sinks import (  # noqa: E402
    CLOSE, HANG, DestServer, SmtpSink, fetch_attempts, make_secret, request_state,
    retry_after, sign, state_counts, verify, verify_hit, wait_until, webhook_cli)

ALL_BYTES = bytes(range(256)) + b"\r\n\x00.\r\n" + bytes(range(255, -1, -1))

# Headers soldr must not forward (hop-by-hop, framing, and forged webhook-*).
DROPPED = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
           "trailer", "upgrade", "expect", "proxy-connection"}
SOLDR_ADDED = {"webhook-id", "webhook-timestamp", "webhook-signature"}


def lb(s):
    return s if isinstance(s, bytes) else s.encode("latin-1")


class ProcessorCase(SoldrTestCase):
    """Helpers shared by the processor tests."""

    serve_args = ()

    def start(self, *args, dest=True):
        if dest:
            self.dest = DestServer(self)
        self.srv = Soldr(self, *self.serve_args, *args).start()
        self.conn = self.srv.db()
        return self.srv

    def add(self, label, dest_url, *flags):
        webhook_cli(self, self.srv.data_dir, "add", label, dest_url, *flags)

    def update(self, label, *flags):
        webhook_cli(self, self.srv.data_dir, "update", label, *flags)

    def post(self, label, body=b"x", target="/", headers=(), method="POST", **kw):
        resp, sent = self.srv.send(label, body=body, method=method, target=target,
                                   headers=headers, **kw)
        return self.assertAck(resp)

    def state(self, rid):
        return request_state(self.conn, rid)

    def wait_state(self, rid, states, timeout=15.0):
        states = (states,) if isinstance(states, str) else tuple(states)
        st = wait_until(lambda: (lambda s: s if s and s[0] in states else None)(self.state(rid)),
                        timeout)
        if not st:
            self.srv.assert_alive()
            self.fail("request %s not %s within %.0f s: state=%r attempts=%r\n"
                      "--- soldr stderr (tail) ---\n%s"
                      % (rid, "/".join(states), timeout, self.state(rid),
                         fetch_attempts(self.conn, rid), self.srv.stderr_text()[-3000:]))
        return st

    def wait_attempts(self, rid, n, timeout=15.0):
        rows = wait_until(lambda: (lambda a: a if len(a) >= n else None)(
            fetch_attempts(self.conn, rid)), timeout)
        if not rows:
            self.srv.assert_alive()
            self.fail("request %s: fewer than %d attempt rows after %.0f s: %r state=%r"
                      % (rid, n, timeout, fetch_attempts(self.conn, rid), self.state(rid)))
        return rows

    def alerted_at(self, label):
        return self.conn.execute("SELECT alerted_at FROM webhooks WHERE id = ?",
                                 (label,)).fetchone()[0]


# ---------------------------------------------------------------------------
# 1. exact forwarding
# ---------------------------------------------------------------------------

class Forwarding(ProcessorCase):

    def setUp(self):
        self.start()

    def forwarded_headers(self, hit, original):
        """Headers the destination got, minus the ones soldr/curl legitimately
        add: Host, Content-Length, webhook-*, and User-Agent/Accept if the
        original had none."""
        orig_names = {lb(n).lower() for n, _ in original}
        skip = {"host", "content-length"} | SOLDR_ADDED
        for n in ("user-agent", "accept"):
            if n.encode() not in orig_names:
                skip.add(n)
        return [(lb(n), lb(v)) for n, v in hit.headers if n.lower() not in skip]

    def expected_headers(self, original):
        return [(lb(n), lb(v)) for n, v in original if lb(n).decode("latin-1").lower()
                not in DROPPED | SOLDR_ADDED]

    def check_delivered_once(self, rid):
        st = self.wait_state(rid, ("delivered", "failed"))
        self.assertEqual(st[0], "delivered", st)
        self.assertEqual(st[1], 1, "requests.attempts")
        self.assertEqual(st[2], 200, "requests.last_status")
        atts = fetch_attempts(self.conn, rid)
        self.assertEqual(len(atts), 1, atts)
        a = atts[0]
        self.assertEqual(a["status"], 200, a)
        self.assertIsNotNone(a["duration_ms"], a)
        self.assertGreaterEqual(a["duration_ms"], 0, a)
        self.assertLess(a["duration_ms"], 10000, a)
        self.assertIsNone(a["error"], a)
        self.assertEqual(a["manual"], 0, a)
        return a

    def test_exact_forwarding_with_signature(self):
        secret = make_secret()
        self.add("signed", self.dest.url("/base/?k=dest"), "--signing-secret", secret)
        original = [("Host", self.srv.host("signed")),
                    ("X-Dup", "a"),
                    ("Content-Type", "application/octet-stream"),
                    ("X-Dup", "b"),
                    ("x-lower-case", "v1"),
                    ("Connection", "keep-alive"),
                    ("Keep-Alive", "timeout=5"),
                    ("TE", "trailers"),
                    ("Trailer", "X-Foo"),
                    ("Proxy-Connection", "keep-alive"),
                    ("Webhook-Id", "forged-id"),
                    ("webhook-signature", "v1,Zm9yZ2Vk"),
                    ("Webhook-Timestamp", "1"),
                    (b"X-Raw", b"caf\xc3\xa9 \xff bytes"),
                    ("User-Agent", "sender/1.0"),
                    ("Accept", "application/json"),
                    ("X-Dup", "c")]
        t0 = time.time()
        rid = self.post("signed", ALL_BYTES, target="/hooks/in?x=1&y=%20z&x=2",
                        headers=original[1:])
        a = self.check_delivered_once(rid)
        hits = self.dest.hits_for("/base/hooks/in")
        self.assertEqual(len(hits), 1, self.dest.hits)
        self.assertEqual(self.dest.count(), 1, self.dest.hits)
        h = hits[0]
        self.assertEqual(h.method, "POST")
        self.assertEqual(h.target, "/base/hooks/in?k=dest&x=1&y=%20z&x=2")
        self.assertEqual(h.body, ALL_BYTES)
        self.assertEqual(self.forwarded_headers(h, original), self.expected_headers(original))
        self.assertEqual(h.header_all("webhook-id"), [rid])
        ts = h.header_all("webhook-timestamp")
        self.assertEqual(len(ts), 1, h.headers)
        self.assertRegex(ts[0], r"^[0-9]+$")
        self.assertLessEqual(abs(int(ts[0]) - h.t), 5, "stale webhook-timestamp %s" % ts[0])
        self.assertGreaterEqual(int(ts[0]), int(t0) - 1)
        sigs = h.header_all("webhook-signature")
        self.assertEqual(len(sigs), 1, h.headers)
        self.assertTrue(sigs[0].startswith("v1,"), sigs[0])
        self.assertTrue(verify_hit(secret, h), "bad signature %r (expected v1,%s)"
                        % (sigs[0], sign(secret, rid, ts[0], ALL_BYTES)))
        # the check is a real one: another secret, another body, another id fail
        self.assertFalse(verify(make_secret(), rid, ts[0], ALL_BYTES, sigs[0]))
        self.assertFalse(verify(secret, rid, ts[0], ALL_BYTES + b"x", sigs[0]))
        self.assertFalse(verify(secret, "forged-id", ts[0], ALL_BYTES, sigs[0]))
        self.assertIn(b"soldr-test-dest", a["response_headers"] or b"", a)
        self.assertEqual(bytes(a["response_body"] or b""), b"status 200", a)

    def test_methods_targets_and_chunked_bodies(self):
        self.add("plain", self.dest.url("/plain"))
        self.add("qry", self.dest.url("/q?d=1"))
        self.add("root", self.dest.url(""))
        # PUT, chunked, to "/" (adds nothing), no Content-Type in the original
        put_headers = [("Transfer-Encoding", "chunked"), ("X-A", "1"), ("x-a", "2")]
        r_put = self.post("plain", b"", method="PUT", target="/", headers=put_headers,
                          raw_body=chunked(b"hello ", b"\x00\xff", b" world"))
        # GET with no body, queries joined destination first
        r_get = self.post("qry", b"", method="GET", target="/?o=2&o=3",
                          headers=[("Accept", "*/*")])
        # DELETE with a body to a destination without a path
        r_del = self.post("root", b'{"gone":true}', method="DELETE", target="/x/y?z",
                          headers=[("Content-Type", "application/json")])
        for rid in (r_put, r_get, r_del):
            self.check_delivered_once(rid)
        by_id = {h.webhook_id: h for h in self.dest.hits_for()}
        self.assertEqual(len(self.dest.hits_for()), 3, self.dest.hits)

        h = by_id[r_put]
        self.assertEqual((h.method, h.target, h.body), ("PUT", "/plain", b"hello \x00\xff world"))
        self.assertEqual(self.forwarded_headers(h, put_headers),
                         [(b"X-A", b"1"), (b"x-a", b"2")])
        self.assertIsNone(h.header("webhook-signature"), "unsigned webhook sent a signature")
        self.assertIsNone(h.header("transfer-encoding"))
        self.assertIsNone(h.header("content-type"), "a Content-Type the sender never sent")

        h = by_id[r_get]
        self.assertEqual((h.method, h.target, h.body), ("GET", "/q?d=1&o=2&o=3", b""))
        self.assertEqual(self.forwarded_headers(h, [("Accept", "*/*")]), [(b"Accept", b"*/*")])

        h = by_id[r_del]
        self.assertEqual((h.method, h.target, h.body), ("DELETE", "/x/y?z", b'{"gone":true}'))
        self.assertEqual(h.header_all("content-type"), ["application/json"])


# ---------------------------------------------------------------------------
# 2. retries, timeouts, network errors, Retry-After, 410
# ---------------------------------------------------------------------------

class Retries(ProcessorCase):

    def setUp(self):
        self.start()

    def test_500s_then_200_with_growing_backoff(self):
        self.add("retry", self.dest.url("/r"), "--backoff-base", "200ms", "--backoff-cap", "2s")
        self.dest.script("/r", [500, 500, 500], then=200)
        rid = self.post("retry", b"payload")
        st = self.wait_state(rid, ("delivered", "failed"), timeout=20)
        self.assertEqual(st[:3], ("delivered", 4, 200))
        hits = self.dest.hits_for("/r")
        self.assertEqual(len(hits), 4, hits)
        self.assertEqual({h.webhook_id for h in hits}, {rid})
        self.assertTrue(all(h.body == b"payload" for h in hits))
        gaps = [b.t - a.t for a, b in zip(hits, hits[1:])]
        for n, g in enumerate(gaps, 1):
            d = min(2.0, 0.2 * 2 ** (n - 1))
            self.assertGreaterEqual(g, d / 2 - 0.01, "gap after attempt %d: %.3f s < %.3f s (gaps %r)"
                                    % (n, g, d / 2, gaps))
            self.assertLessEqual(g, d + 1.0, "gap after attempt %d: %.3f s > %.3f s + 1 s (gaps %r)"
                                 % (n, g, d, gaps))
        for n in range(1, len(gaps)):
            self.assertGreaterEqual(gaps[n], gaps[n - 1] - 0.05, "backoff shrank: gaps %r" % gaps)
        atts = fetch_attempts(self.conn, rid)
        self.assertEqual([a["status"] for a in atts], [500, 500, 500, 200], atts)
        starts = [a["started_at"] for a in atts]
        self.assertEqual(starts, sorted(starts))
        self.assertTrue(all(a["duration_ms"] is not None for a in atts), atts)
        self.assertEqual(bytes(atts[0]["response_body"] or b""), b"status 500", atts[0])

    def check_network_error(self, label, path, behaviour, *flags, min_ms=0):
        self.dest.set_default(behaviour, path=path)
        self.add(label, self.dest.url(path), "--backoff-base", "60s", *flags)
        rid = self.post(label, b"net")
        atts = self.wait_attempts(rid, 1, timeout=15)
        st = self.wait_state(rid, "pending", timeout=5)
        a = atts[0]
        self.assertIsNone(a["status"], "network error recorded with a status: %r" % a)
        self.assertTrue(a["error"] and a["error"].strip() and a["error"] != "interrupted",
                        "no error text: %r" % a)
        self.assertIsNotNone(a["duration_ms"], a)
        self.assertGreaterEqual(a["duration_ms"], min_ms, a)
        self.assertEqual(st[1], 1, "requests.attempts after one failed attempt: %r" % (st,))
        end = a["started_at"] + a["duration_ms"]
        # attempt 1 with base 60 s: next attempt in [30 s, 60 s]
        self.assertGreaterEqual(st[3], end + 30000 - 1000, "next_attempt_at too early: %r" % (st,))
        self.assertLessEqual(st[3], end + 60000 + 2000, "next_attempt_at too late: %r" % (st,))
        # (at most 2: curl itself retries once when a reused connection dies)
        self.assertIn(len(self.dest.hits_for(path)), (1, 2), self.dest.hits)
        return a

    def test_timeout_is_a_network_error(self):
        a = self.check_network_error("slow", "/hang", HANG, "--timeout", "500ms", min_ms=400)
        self.assertLess(a["duration_ms"], 5000, "--timeout 500ms not applied: %r" % a)

    def test_closed_connection_is_a_network_error(self):
        # always close: curl silently retries once on a dead reused connection
        self.check_network_error("closer", "/close", CLOSE)

    def test_retry_after_is_honoured(self):
        flags = ("--backoff-base", "100ms", "--backoff-cap", "200ms")
        self.add("ra429", self.dest.url("/ra429"), *flags)
        self.add("ra503", self.dest.url("/ra503"), *flags)
        self.add("ralong", self.dest.url("/ralong"), "--backoff-base", "100ms")
        self.dest.script("/ra429", [retry_after(429, 2)], then=200)
        self.dest.script("/ra503", [retry_after(503, 2)], then=200)
        self.dest.script("/ralong", [retry_after(429, 3600)], then=200)
        r429 = self.post("ra429")
        r503 = self.post("ra503")
        rlong = self.post("ralong")
        for rid, path, status in ((r429, "/ra429", 429), (r503, "/ra503", 503)):
            st = self.wait_state(rid, ("delivered", "failed"), timeout=15)
            self.assertEqual(st[:3], ("delivered", 2, 200))
            hits = self.dest.hits_for(path)
            self.assertEqual(len(hits), 2, hits)
            gap = hits[1].t - hits[0].t
            self.assertGreaterEqual(gap, 1.95, "%d Retry-After: 2 ignored: retried after %.3f s"
                                    % (status, gap))
            self.assertLessEqual(gap, 3.5, "%d Retry-After: 2: retried only after %.3f s"
                                 % (status, gap))
            self.assertEqual([a["status"] for a in fetch_attempts(self.conn, rid)], [status, 200])
        a = self.wait_attempts(rlong, 1)[0]
        st = self.state(rlong)
        self.assertEqual(st[:3], ("pending", 1, 429))
        self.assertGreaterEqual(st[3], a["started_at"] + 3600 * 1000 - 2000,
                                "Retry-After: 3600 ignored: next_attempt_at %d is %.1f s after "
                                "the attempt" % (st[3], (st[3] - a["started_at"]) / 1000))
        self.assertEqual(len(self.dest.hits_for("/ralong")), 1)

    def test_410_fails_at_once(self):
        self.add("gone", self.dest.url("/gone"), "--backoff-base", "100ms")
        self.dest.script("/gone", [410], then=200)
        rid = self.post("gone")
        st = self.wait_state(rid, ("delivered", "failed"))
        self.assertEqual(st[:3], ("failed", 1, 410))
        time.sleep(1.0)
        self.assertEqual(len(self.dest.hits_for("/gone")), 1, "410 was retried")
        self.assertEqual([a["status"] for a in fetch_attempts(self.conn, rid)], [410])
        self.assertEqual(self.state(rid)[0], "failed")


# ---------------------------------------------------------------------------
# 3. exhaustion and alerts, orphans, settings re-read at claim time
# ---------------------------------------------------------------------------

class Alerts(ProcessorCase):

    def setUp(self):
        self.smtp = SmtpSink(self)
        self.dest = DestServer(self)
        self.start("--smtp-url", self.smtp.url, "--alert-from", "alerts@soldr.test",
                   "--alert-email", "default-ops@example.com",
                   "--alert-url", self.dest.url("/alert-default"), dest=False)

    def mails_to(self, addr):
        return [m for m in self.smtp.mails() if addr in m.rcpts]

    def posts(self, path):
        return [json.loads(h.body) for h in self.dest.hits_for(path)]

    def check_alert_post(self, hit, label, rid, typ):
        self.assertEqual(hit.method, "POST")
        self.assertIn("json", (hit.header("content-type") or "").lower(), hit.headers)
        doc = json.loads(hit.body)
        self.assertEqual(doc.get("type"), typ, doc)
        self.assertEqual(doc.get("webhook"), label, doc)
        if rid is not None:
            self.assertEqual(doc.get("request_id"), rid, doc)

    def test_one_alert_per_incident_then_one_resolved(self):
        common = ("--max-attempts", "2", "--backoff-base", "100ms", "--backoff-cap", "200ms")
        self.add("flaky", self.dest.url("/flaky"), *common, "--alert-email", "ops@example.com",
                 "--alert-url", self.dest.url("/alert"))
        self.add("flakd", self.dest.url("/flakd"), *common)  # uses the serve defaults
        self.dest.set_default(500, path="/flaky")
        self.dest.set_default(500, path="/flakd")

        r1 = self.post("flaky", b"first")
        d1 = self.post("flakd", b"first-d")
        for rid in (r1, d1):
            st = self.wait_state(rid, ("delivered", "failed"))
            self.assertEqual(st[:3], ("failed", 2, 500))
            self.assertEqual([a["status"] for a in fetch_attempts(self.conn, rid)], [500, 500])
        self.assertEqual(len(self.dest.hits_for("/flaky")), 2)

        self.assertTrue(wait_until(lambda: len(self.mails_to("ops@example.com")) >= 1
                                   and len(self.dest.hits_for("/alert")) >= 1
                                   and len(self.mails_to("default-ops@example.com")) >= 1
                                   and len(self.dest.hits_for("/alert-default")) >= 1, 10),
                        "alerts missing: mails %r, alert posts %r / %r"
                        % (self.smtp.mails(), self.dest.hits_for("/alert"),
                           self.dest.hits_for("/alert-default")))
        self.assertIsNotNone(self.alerted_at("flaky"))
        self.assertIsNotNone(self.alerted_at("flakd"))

        # a second failure of the same webhook: no new alert
        r2 = self.post("flaky", b"second")
        self.assertEqual(self.wait_state(r2, ("delivered", "failed"))[0], "failed")
        time.sleep(1.5)
        mails = self.mails_to("ops@example.com")
        self.assertEqual(len(mails), 1, mails)
        m = mails[0]
        self.assertEqual(m.mail_from, "alerts@soldr.test")
        subj = m.subject.lower()
        for word in ("soldr", "flaky", "failing"):
            self.assertIn(word, subj, "alert subject %r lacks %r" % (m.subject, word))
        self.assertIn("flaky", m.text())
        alert_hits = self.dest.hits_for("/alert")
        self.assertEqual(len(alert_hits), 1, alert_hits)
        self.check_alert_post(alert_hits[0], "flaky", r1, "soldr.alert")

        dmails = self.mails_to("default-ops@example.com")
        self.assertEqual(len(dmails), 1, dmails)
        self.assertIn("flakd", dmails[0].subject)
        dhits = self.dest.hits_for("/alert-default")
        self.assertEqual(len(dhits), 1, dhits)
        self.check_alert_post(dhits[0], "flakd", d1, "soldr.alert")
        self.assertEqual(len(self.smtp.mails()), 2, self.smtp.mails())

        # the destination recovers: the next delivery resolves the incident, once
        self.dest.set_default(200, path="/flaky")
        r3 = self.post("flaky", b"third")
        self.assertEqual(self.wait_state(r3, ("delivered", "failed"))[:3], ("delivered", 1, 200))
        self.assertTrue(wait_until(lambda: len(self.mails_to("ops@example.com")) >= 2
                                   and len(self.dest.hits_for("/alert")) >= 2, 10),
                        "no resolved notice: mails %r, posts %r"
                        % (self.smtp.mails(), self.dest.hits_for("/alert")))
        self.assertTrue(wait_until(lambda: self.alerted_at("flaky") is None, 5),
                        "alerted_at not cleared")
        r4 = self.post("flaky", b"fourth")
        self.assertEqual(self.wait_state(r4, ("delivered", "failed"))[0], "delivered")
        time.sleep(1.0)
        mails = self.mails_to("ops@example.com")
        self.assertEqual(len(mails), 2, mails)
        self.assertIn("resolved", mails[1].subject.lower(), mails[1].subject)
        self.assertIn("flaky", mails[1].subject)
        alert_hits = self.dest.hits_for("/alert")
        self.assertEqual(len(alert_hits), 2, alert_hits)
        self.check_alert_post(alert_hits[1], "flaky", None, "soldr.resolved")
        # the other webhook's incident is untouched
        self.assertIsNotNone(self.alerted_at("flakd"))
        self.assertEqual(len(self.mails_to("default-ops@example.com")), 1)
        self.assertEqual(len(self.dest.hits_for("/alert-default")), 1)

    def test_failing_alert_channels_are_retried_and_never_block(self):
        self.dest.set_default(500, path="/bad")
        one = ("--max-attempts", "1")
        # webhook bad-a: its first alert email gets 451, its first alert POST 500;
        # both are retried, and each channel delivers its notice once
        self.smtp.fail_next(1)
        self.dest.script("/alert-flaky", [500], then=200)
        self.add("bad-a", self.dest.url("/bad"), *one, "--alert-email", "a@example.com",
                 "--alert-url", self.dest.url("/alert-flaky"))
        ra = self.post("bad-a")
        self.assertEqual(self.wait_state(ra, ("failed", "delivered"))[0], "failed")

        def succeeded():
            return [h for h in self.dest.hits_for("/alert-flaky")
                    if h.answered and getattr(h.behaviour, "status", 0) == 200]
        ok = wait_until(lambda: succeeded() and self.mails_to("a@example.com"), 25, 0.2)
        self.assertTrue(ok, "failed alert not retried within 25 s: posts %r, mails %r, smtp %r"
                        % (self.dest.hits_for("/alert-flaky"), self.smtp.mails(),
                           self.smtp.commands[-20:]))
        self.assertTrue(any(c.upper().startswith("MAIL") for c in self.smtp.commands[:3]),
                        self.smtp.commands)
        time.sleep(1.0)
        self.assertEqual(len(self.dest.hits_for("/alert-flaky")), 2,
                         "alert POST: one 500, then one success expected")
        self.assertEqual(len(succeeded()), 1, "alert POST repeated after it succeeded")
        self.check_alert_post(succeeded()[0], "bad-a", ra, "soldr.alert")
        self.assertEqual(len(self.mails_to("a@example.com")), 1, self.smtp.mails())

        # webhook bad-b: its alert POST hangs; deliveries go on meanwhile
        self.dest.set_default(HANG, path="/alert-hang")
        self.add("bad-b", self.dest.url("/bad"), *one, "--alert-url",
                 self.dest.url("/alert-hang"))
        self.add("good", self.dest.url("/good"))
        rb = self.post("bad-b")
        self.assertEqual(self.wait_state(rb, ("failed", "delivered"))[0], "failed")
        self.assertTrue(self.dest.wait_hits(1, "/alert-hang", timeout=10),
                        "no alert POST to the hanging alert URL")
        t0 = time.monotonic()
        ids = [self.post("good", b"g%d" % i) for i in range(20)]
        for rid in ids:
            self.assertEqual(self.wait_state(rid, ("delivered", "failed"), timeout=10)[0],
                             "delivered")
        self.assertLess(time.monotonic() - t0, 8, "deliveries were held up by alerting")
        self.assertEqual(len(self.dest.hits_for("/good")), 20)


class Orphans(ProcessorCase):

    def setUp(self):
        self.start()

    def test_unknown_and_inactive_webhooks_are_orphaned(self):
        self.add("sleeping", self.dest.url("/inactive"), "--inactive")
        self.add("awake", self.dest.url("/active"))
        r_unknown = self.post("nobody-here", b"u")
        r_inactive = self.post("sleeping", b"i")
        r_active = self.post("awake", b"a")
        self.assertEqual(self.wait_state(r_active, ("delivered", "failed"))[0], "delivered")
        for rid in (r_unknown, r_inactive):
            st = self.wait_state(rid, ("orphaned", "delivered", "failed"))
            self.assertEqual(st[0], "orphaned", st)
            self.assertEqual(fetch_attempts(self.conn, rid), [])
        time.sleep(0.5)
        self.assertEqual([h.webhook_id for h in self.dest.hits_for()], [r_active])

    def test_settings_are_reread_at_claim_time(self):
        self.add("moving", self.dest.url("/first"))
        r1 = self.post("moving")
        self.assertEqual(self.wait_state(r1, ("delivered", "failed"))[0], "delivered")
        self.update("moving", "--destination", self.dest.url("/second"))
        r2 = self.post("moving")
        self.assertEqual(self.wait_state(r2, ("delivered", "failed"))[0], "delivered")
        self.update("moving", "--inactive")
        r3 = self.post("moving")
        self.assertEqual(self.wait_state(r3, ("orphaned", "delivered", "failed"))[0], "orphaned")
        self.assertEqual([h.webhook_id for h in self.dest.hits_for("/first")], [r1])
        self.assertEqual([h.webhook_id for h in self.dest.hits_for("/second")], [r2])
        self.assertEqual(self.dest.count(), 2)


# ---------------------------------------------------------------------------
# 4. no duplicates under load
# ---------------------------------------------------------------------------

class NoDuplicates(ProcessorCase):

    N = 5000
    SENDERS = 25

    def setUp(self):
        self.start()

    def test_every_request_delivered_exactly_once(self):
        self.add("bulk", self.dest.url("/bulk"), "--max-concurrency", "16")
        per = self.N // self.SENDERS

        def sender(k):
            out = []
            with self.srv.connect(timeout=30) as c:
                for i in range(per):
                    body = b"%d-%d" % (k, i)
                    c.send(Req("POST", "/e?k=%d" % k, [("Host", self.srv.host("bulk"))],
                               body).raw)
                    resp = c.read_response()
                    if resp.status != 200:
                        raise AssertionError("ingest answered %r" % resp)
                    out.append((resp.json()["id"], body))
            return out

        t0 = time.monotonic()
        sent = [x for chunk in run_threads(sender, [(k,) for k in range(self.SENDERS)],
                                           timeout=60) for x in chunk]
        t_ingest = time.monotonic() - t0
        ids = {rid for rid, _ in sent}
        self.assertEqual(len(ids), self.N, "ingest gave duplicate ids")

        def delivered():
            return self.conn.execute("SELECT count(*) FROM requests WHERE state = 'delivered'"
                                     ).fetchone()[0] >= self.N
        ok = wait_until(delivered, 60, 0.2)
        t_all = time.monotonic() - t0
        sys.stderr.write("\n[no-duplicates] %d requests: ingest %.1f s, all delivered %.1f s\n"
                         % (self.N, t_ingest, t_all))
        self.assertTrue(ok, "not all delivered after 60 s: %r" % state_counts(self.conn))
        time.sleep(0.5)
        counts = self.dest.id_counts()
        dups = {k: v for k, v in counts.items() if v > 1}
        self.assertEqual(dups, {}, "%d ids delivered more than once" % len(dups))
        self.assertEqual(set(counts), ids, "ids at the destination differ from the acked ids")
        self.assertEqual(self.dest.count(), self.N)
        bodies = {h.webhook_id: h.body for h in self.dest.hits_for()}
        self.assertEqual(bodies, dict(sent), "a body went out under the wrong webhook-id")
        self.assertEqual(state_counts(self.conn), {"delivered": self.N})
        n_att, n_ok = self.conn.execute(
            "SELECT count(*), sum(status = 200) FROM attempts").fetchone()
        self.assertEqual((n_att, n_ok), (self.N, self.N))
        self.assertEqual(self.conn.execute("SELECT count(*) FROM requests WHERE attempts != 1"
                                           ).fetchone()[0], 0)


if __name__ == "__main__":
    unittest.main()
