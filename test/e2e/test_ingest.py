"""End-to-end: the ingest path of `soldr serve` (HTTP in, SQLite rows out)."""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from soldr_harness import (  # noqa: E402
    ConnectionClosed, HTTPConn, Req, Soldr, SoldrTestCase, chunked, count_requests, fetch_request,
    fetch_requests, now_ms, run_threads)

ALL_BYTES = bytes(range(256)) + b"\x00" * 17 + bytes(range(255, -1, -1)) + b"\x00"


class IngestBasics(SoldrTestCase):

    def setUp(self):
        self.srv = Soldr(self).start()

    def test_binary_body_repeated_headers_stored_byte_for_byte(self):
        headers = [("Host", self.srv.host("tenant-1")),
                   ("X-Dup", "a"),
                   ("content-TYPE", "application/octet-stream"),
                   ("X-Dup", "b"),
                   ("x-lower-case", "v1"),
                   ("X-UTF8", "caf\u00e9 \u2615"),
                   (b"X-Raw", b"\xff\xfe bytes"),
                   ("X-Dup", "c")]
        target = "/hooks/in?x=1&y=%20z&x=2&empty="
        with self.srv.connect() as c:
            req = Req("POST", target, headers, ALL_BYTES)
            t0 = now_ms()
            c.send(req.raw)
            resp = c.read_response()
            t1 = now_ms()
            peer = c.local_peer
        rid = self.assertAck(resp)
        self.assertUUID7(rid, t0, t1)

        db = self.srv.db()
        row = fetch_request(db, rid)
        self.assertIsNotNone(row, "acked id %s not in the database right after the 200" % rid)
        self.assertEqual(row["id"], rid)
        self.assertEqual(row["webhook"], "tenant-1")
        self.assertEqual(row["method"], "POST")
        self.assertEqual(row["target"], target.encode())
        self.assertEqual(row["headers"], req.header_block)
        self.assertEqual(row["body"], ALL_BYTES)
        self.assertEqual(len(row["body"]), len(ALL_BYTES))
        self.assertEqual(db.execute("SELECT typeof(body) FROM requests JOIN request_bodies "
                                    "USING (seq) WHERE id=?",
                                    (rid,)).fetchone()[0], b"blob")
        self.assertEqual(row["peer"], peer)
        self.assertTrue(row["peer"].startswith("127.0.0.1:"), row["peer"])
        self.assertGreaterEqual(row["received_at"], t0 - 50)
        self.assertLessEqual(row["received_at"], t1 + 50)
        self.assertIn(row["state"], ("pending", "orphaned"))  # no such webhook: may be orphaned
        self.assertEqual(row["attempts"], 0)
        self.assertIsInstance(row["seq"], int)
        self.assertEqual(count_requests(db), 1)

    def test_methods_hosts_and_keepalive(self):
        cases = [  # (method, host, target, body, expected label)
            ("PUT", self.srv.host("abc"), "/p?q=1", b"put-body", "abc"),
            ("GET", self.srv.host("abc", with_port=False), "/get?a=b", b"", "abc"),
            ("DELETE", "MiXeD-Case9.WH.LocalHost:%d" % self.srv.port, "/", b"d", "mixed-case9"),
            ("PATCH", "x" * 63 + ".wh.localhost", "/long", b"{}", "x" * 63),
            ("OPTIONS", "0.WH.LOCALHOST", "*", b"", "0"),
        ]
        db = self.srv.db()
        ids = []
        with self.srv.connect() as c:  # all on one keep-alive connection
            for method, host, target, body, label in cases:
                req = Req(method, target, [("Host", host), ("Accept", "*/*")], body)
                c.send(req.raw)
                resp = c.read_response()
                rid = self.assertAck(resp)
                self.assertNotEqual((resp.header("connection") or "").lower(), "close", resp)
                row = fetch_request(db, rid)
                self.assertIsNotNone(row, "%s %s not stored" % (method, host))
                self.assertEqual((row["method"], row["webhook"], row["target"], row["body"],
                                  row["headers"]),
                                 (method, label, target.encode(), body, req.header_block))
                self.assertEqual(row["peer"], c.local_peer)
                ids.append(rid)
        self.assertEqual(ids, sorted(ids), "ids are not time-ordered")
        self.assertEqual(len(set(ids)), len(ids))
        self.assertEqual(count_requests(db), len(cases))

    def test_ids_strictly_increasing(self):
        ids = []
        with self.srv.connect() as c:
            for i in range(30):
                c.send(Req("POST", "/", [("Host", self.srv.host("seq"))], b"%d" % i).raw)
                ids.append(self.assertAck(c.read_response()))
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 30)
        rows = fetch_requests(self.srv.db(), "webhook = 'seq'")
        self.assertEqual([r["id"] for r in rows], ids, "seq order differs from id order")
        self.assertEqual([r["body"] for r in rows], [b"%d" % i for i in range(30)])

    def test_expect_100_continue(self):
        body = b"x" * 5000
        with self.srv.connect() as c:
            req = Req("POST", "/e", [("Host", self.srv.host("cont")), ("Expect", "100-continue")],
                      body)
            head, _ = req.raw.split(b"\r\n\r\n", 1)
            c.send(head + b"\r\n\r\n")
            interim = c.read_response(allow_1xx=True)
            self.assertEqual(interim.status, 100, interim)
            c.send(body)
            rid = self.assertAck(c.read_response())
        row = fetch_request(self.srv.db(), rid)
        self.assertEqual(row["body"], body)
        self.assertEqual(row["headers"], req.header_block)

    def test_chunked_body_stored_dechunked(self):
        parts = [b"hello ", b"\x00\xff\r\n", b"w" * 3000, b"", b"end"]
        parts = [p for p in parts if p]  # an empty chunk would end the body
        raw_body = chunked(*parts)
        req = Req("POST", "/chunked?z=9",
                  [("Host", self.srv.host("chunky")), ("Transfer-Encoding", "chunked")],
                  b"", raw_body=raw_body)
        with self.srv.connect() as c:
            # dribble it in small pieces to exercise the incremental parser
            for i in range(0, len(req.raw), 997):
                c.send(req.raw[i:i + 997])
                time.sleep(0.002)
            rid = self.assertAck(c.read_response())
            # and the connection is still usable afterwards
            c.send(Req("POST", "/after", [("Host", self.srv.host("chunky"))], b"next").raw)
            rid2 = self.assertAck(c.read_response())
        db = self.srv.db()
        row = fetch_request(db, rid)
        self.assertEqual(row["body"], b"".join(parts))
        self.assertEqual(row["target"], b"/chunked?z=9")
        self.assertEqual(fetch_request(db, rid2)["body"], b"next")

    def test_stdout_clean_stderr_json_and_clean_exit(self):
        for i in range(3):
            self.assertAck(self.srv.send("quiet", b"body %d" % i)[0])
        rc = self.srv.stop()
        self.assertEqual(rc, 0, "soldr serve exited with %s on SIGTERM\n%s"
                         % (rc, self.srv.stderr_text()[-4000:]))
        self.assertEqual(self.srv.stdout_bytes(), b"",
                         "stdout must carry only fallback records")
        lines = [ln for ln in self.srv.stderr_text().splitlines() if ln.strip()]
        self.assertTrue(lines, "no log lines on stderr")
        for ln in lines:
            try:
                obj = json.loads(ln)
            except ValueError:
                self.fail("stderr line is not JSON: %r" % ln[:300])
            self.assertIsInstance(obj, dict, ln)


class Connections(SoldrTestCase):

    def test_raw_target_bytes_stored_as_received(self):
        srv = Soldr(self).start()
        target = b"/raw\xff\xfe/%41?q=\xc3&sp=a%20b#frag"
        resp, req = srv.send("raw", b"x", target=target)
        rid = self.assertAck(resp)
        self.assertEqual(fetch_request(srv.db(), rid)["target"], target)

    def test_connection_close_and_http10_close_after_answer(self):
        srv = Soldr(self).start()
        host = srv.host("cc").encode()
        for raw in (b"POST /c HTTP/1.1\r\nHost: " + host
                    + b"\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
                    b"POST /ten HTTP/1.0\r\nHost: " + host + b"\r\nContent-Length: 1\r\n\r\nx"):
            with srv.connect() as c:
                c.send(raw)
                rid = self.assertAck(c.read_response())
                self.assertTrue(c.closed_by_peer(3), "connection kept open after %r" % raw)
            self.assertEqual(fetch_request(srv.db(), rid)["body"], b"x")

    def test_idle_keepalive_connection_closed(self):
        srv = Soldr(self, "--idle-timeout", "500ms").start()
        with srv.connect() as c:
            c.send(Req("POST", "/", [("Host", srv.host("idle"))], b"x").raw)
            self.assertAck(c.read_response())
            t0 = time.monotonic()
            self.assertTrue(c.closed_by_peer(5), "idle connection not closed")
            self.assertGreater(time.monotonic() - t0, 0.3)

    def test_max_connections(self):
        srv = Soldr(self, "--max-connections", "3").start()
        held = []
        deadline = time.monotonic() + 5
        while len(held) < 3:
            # each admitted connection proves itself with a request; the harness's
            # readiness probe may still be counted for a moment, so retry briefly
            c = srv.connect()
            self.addCleanup(c.close)
            try:
                c.send(Req("POST", "/", [("Host", srv.host("mc"))], b"h%d" % len(held)).raw)
                self.assertAck(c.read_response())
                held.append(c)
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                c.close()
                self.assertLess(time.monotonic(), deadline, "could not open 3 connections")
                time.sleep(0.1)
        with srv.connect() as extra:
            self.assertTrue(extra.closed_by_peer(3), "a 4th connection was kept open")
        # the three admitted ones still work
        for i, c in enumerate(held):
            c.send(Req("POST", "/", [("Host", srv.host("mc"))], b"%d" % i).raw)
            self.assertAck(c.read_response())
        for c in held:
            c.close()
        time.sleep(0.2)
        self.assertAck(srv.send("mc", b"after")[0])


class IngestLoad(SoldrTestCase):

    def setUp(self):
        self.srv = Soldr(self).start()

    def test_1000_requests_50_keepalive_connections(self):
        nconn, nreq = 50, 20

        def worker(i):
            out = []
            with HTTPConn(self.srv.port, timeout=30) as c:
                for j in range(nreq):
                    body = b"c%02d-r%02d-" % (i, j) + os.urandom((i * 37 + j * 101) % 1500)
                    c.send(Req("POST", "/load/%d/%d?k=v" % (i, j),
                               [("Host", self.srv.host("load")), ("X-Conn", str(i))], body).raw)
                    resp = c.read_response()
                    if resp.status != 200:
                        raise AssertionError("conn %d req %d: %r" % (i, j, resp))
                    out.append((resp.json()["id"], body, c.local_peer, "/load/%d/%d?k=v" % (i, j)))
            return out

        t0 = time.monotonic()
        results = run_threads(worker, [(i,) for i in range(nconn)], timeout=120)
        elapsed = time.monotonic() - t0
        sent = [r for conn in results for r in conn]
        self.assertEqual(len(sent), nconn * nreq)
        ids = [r[0] for r in sent]
        self.assertEqual(len(set(ids)), nconn * nreq, "duplicate ids handed out")
        for conn in results:
            cids = [r[0] for r in conn]
            self.assertEqual(cids, sorted(cids), "ids not increasing within a connection")
            self.assertEqual(len({r[2] for r in conn}), 1)
        for rid in ids[:5]:
            self.assertUUID7(rid)

        rows = {r["id"]: r for r in fetch_requests(self.srv.db(), "webhook = 'load'")}
        self.assertEqual(len(rows), nconn * nreq)
        for rid, body, peer, target in sent:
            row = rows.get(rid)
            self.assertIsNotNone(row, "acked id %s missing" % rid)
            self.assertEqual(row["body"], body, rid)
            self.assertEqual(row["peer"], peer, rid)
            self.assertEqual(row["target"], target.encode(), rid)
        sys.stderr.write("[1000 requests over 50 connections in %.2f s] " % elapsed)

    def test_pipelined_10_requests_one_sendall(self):
        methods = ["POST", "PUT", "GET", "POST", "PATCH", "DELETE", "POST", "PUT", "POST", "GET"]
        reqs = [Req(m, "/pipe/%d" % i, [("Host", self.srv.host("pipe")), ("X-I", str(i))],
                    b"" if m == "GET" else b"pipelined body %d " % i + bytes([i]) * i)
                for i, m in enumerate(methods)]
        with self.srv.connect() as c:
            c.send(b"".join(r.raw for r in reqs))
            resps = [c.read_response() for _ in reqs]
        ids = [self.assertAck(r) for r in resps]
        self.assertEqual(ids, sorted(ids), "responses out of order")
        self.assertEqual(len(set(ids)), 10)
        db = self.srv.db()
        for rid, req in zip(ids, reqs):
            row = fetch_request(db, rid)
            self.assertIsNotNone(row)
            self.assertEqual((row["method"].encode(), row["target"], row["headers"], row["body"]),
                             (req.method, req.target, req.header_block, req.body))
        self.assertEqual(count_requests(db), 10)


class IngestErrors(SoldrTestCase):
    """Bad input gets the right status, stores nothing and never kills the daemon."""

    def setUp(self):
        self.srv = Soldr(self, "--max-body", "1024", "--max-header-size", "2KiB",
                         "--read-timeout", "500ms").start()
        self.db = self.srv.db()

    def assertServes(self):
        self.srv.assert_alive()
        rid = self.assertAck(self.srv.send("good", b"still fine")[0])
        self.assertEqual(fetch_request(self.db, rid)["body"], b"still fine")

    def assertNothingStored(self):
        self.assertEqual(count_requests(self.db), 0, fetch_requests(self.db))

    def bad(self, raw, expect_close=True, timeout=5):
        c = HTTPConn(self.srv.port, timeout=timeout)
        self.addCleanup(c.close)
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = c.read_response()
        if expect_close:
            self.assertTrue(c.closed_by_peer(3), "connection left open after %d" % resp.status)
        return resp

    def test_foreign_hosts_404_not_stored(self):
        hosts = ["example.com", "wh.localhost", "wh.localhost:%d" % self.srv.port,
                 "a.b.wh.localhost", "under_score.wh.localhost", "x" * 64 + ".wh.localhost",
                 "a.wh.localhost.evil.com", "a.xwh.localhost", ".wh.localhost", "127.0.0.1",
                 "caf\u00e9.wh.localhost"]
        with self.srv.connect() as c:
            for h in hosts:
                c.send(Req("POST", "/", [("Host", h)], b"not for us").raw)
                resp = c.read_response()
                self.assertEqual(resp.status, 404, "Host %r: %r" % (h, resp))
        self.assertNothingStored()
        self.assertServes()

    def test_missing_host_400(self):
        resp = self.bad(Req("POST", "/", [("X-A", "b")], b"no host").raw, expect_close=False)
        self.assertEqual(resp.status, 400, resp)
        self.assertNothingStored()
        self.assertServes()

    def test_garbage_400_and_close(self):
        resp = self.bad(b"GARBAGE\r\n\r\n")
        self.assertEqual(resp.status, 400, resp)
        self.assertNothingStored()
        self.assertServes()

    def test_assorted_malformed_requests(self):
        host = self.srv.host("m").encode()
        cases = [
            b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: abc\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 3\r\n"
            b"Content-Length: 4\r\n\r\nabcd",
            b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nNo colon here\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nabc\r\n0\r\n\r\n",
            b"PO ST / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n",
            b"\x00\x01\x02\x03\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: " + host + b"\r\nX-Nul: a\x00b\r\n\r\n",
        ]
        for raw in cases:
            resp = self.bad(raw)
            self.assertEqual(resp.status, 400, "%r -> %r" % (raw, resp))
        self.assertNothingStored()
        self.assertServes()

    def test_413_content_length_over_max_body(self):
        resp = self.bad(Req("POST", "/", [("Host", self.srv.host("big"))], b"z" * 1025).raw,
                        expect_close=False)
        self.assertEqual(resp.status, 413, resp)
        self.assertNothingStored()
        # exactly max-body is fine
        rid = self.assertAck(self.srv.send("big", b"y" * 1024)[0])
        self.assertEqual(fetch_request(self.db, rid)["body"], b"y" * 1024)

    def test_413_announced_length_without_body(self):
        # a huge Content-Length must be refused from the headers alone
        resp = self.bad(b"POST / HTTP/1.1\r\nHost: " + self.srv.host("big").encode()
                        + b"\r\nContent-Length: 10000000000\r\n\r\n")
        self.assertEqual(resp.status, 413, resp)
        self.assertNothingStored()
        self.assertServes()

    def test_413_chunked_body_growing_over_max(self):
        raw = Req("POST", "/", [("Host", self.srv.host("big")), ("Transfer-Encoding", "chunked")],
                  raw_body=chunked(b"a" * 600, b"b" * 600)).raw
        resp = self.bad(raw, expect_close=False)
        self.assertEqual(resp.status, 413, resp)
        self.assertNothingStored()
        self.assertServes()

    def test_431_header_section_too_large(self):
        raw = Req("POST", "/", [("Host", self.srv.host("hdr")), ("X-Big", "h" * 3000)],
                  b"x").raw
        resp = self.bad(raw)
        self.assertEqual(resp.status, 431, resp)
        many = [("Host", self.srv.host("hdr"))] + [("X-H%d" % i, "v" * 20) for i in range(200)]
        resp = self.bad(Req("POST", "/", many, b"x").raw)
        self.assertEqual(resp.status, 431, resp)
        self.assertNothingStored()
        # just under the limit is fine
        rid = self.assertAck(self.srv.send("hdr", b"ok", headers=[("X-Big", "h" * 1500)])[0])
        self.assertIsNotNone(fetch_request(self.db, rid))
        self.assertServes()

    def test_408_stalled_mid_body(self):
        head = (b"POST / HTTP/1.1\r\nHost: " + self.srv.host("slow").encode()
                + b"\r\nContent-Length: 100\r\n\r\n" + b"only ten b")
        t0 = time.monotonic()
        resp = self.bad(head, timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(resp.status, 408, resp)
        self.assertGreaterEqual(elapsed, 0.4, "408 came before the read timeout")
        self.assertLess(elapsed, 5.0, "408 came far too late for --read-timeout 500ms")
        self.assertNothingStored()
        self.assertServes()

    def test_408_stalled_mid_headers(self):
        t0 = time.monotonic()
        resp = self.bad(b"POST / HTTP/1.1\r\nHost: " + self.srv.host("slow").encode()
                        + b"\r\nX-Partial: ", timeout=10)
        self.assertEqual(resp.status, 408, resp)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertNothingStored()
        self.assertServes()

    def test_slow_but_steady_client_within_timeout(self):
        # a request trickled in over less than the read timeout is accepted
        raw = Req("POST", "/", [("Host", self.srv.host("trickle"))], b"t" * 40).raw
        with self.srv.connect() as c:
            for i in range(0, len(raw), len(raw) // 4 + 1):
                c.send(raw[i:i + len(raw) // 4 + 1])
                time.sleep(0.05)
            rid = self.assertAck(c.read_response())
        self.assertEqual(fetch_request(self.db, rid)["body"], b"t" * 40)

    def test_client_disconnect_mid_request_stores_nothing(self):
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", self.srv.port))
            s.sendall(b"POST / HTTP/1.1\r\nHost: " + self.srv.host("gone").encode()
                      + b"\r\nContent-Length: 50\r\n\r\nhalf")
            s.close()
        time.sleep(0.1)
        self.assertNothingStored()
        self.assertServes()


if __name__ == "__main__":
    unittest.main()
