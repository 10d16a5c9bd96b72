"""End-to-end: when the commit fails, requests go to stdout (then 200), and
`soldr replay` puts them back; when stdout fails too, the answer is 503."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from soldr_harness import (  # noqa: E402
    ClassScope, HTTPConn, Req, Soldr, SoldrTestCase, WriteLock, count_requests, fetch_request,
    make_tempdir, now_ms, open_db_ro, parse_records, record_body, record_headers,
    record_target, require_binary, run_soldr, run_threads)

N = 50
NCONN = 10
METHODS = ["POST", "PUT", "POST", "GET", "PATCH", "DELETE", "POST"]


def make_request(srv, i):
    label = "fb%d" % (i % 3)
    headers = [("Host", srv.host(label)), ("X-Seq", str(i)), ("X-Dup", "a"),
               ("x-mixed-CASE", "m"), ("X-Dup", "b")]
    if i % 5 == 0:
        headers.append((b"X-Raw", b"\xff\xfe"))  # not UTF-8: record needs headers_b64
    if i % 7 == 0:
        headers.append(("X-UTF8", "na\u00efve \u2713"))
    kind = i % 4
    if kind == 0:
        body = bytes(range(256)) + b"\x00\x00" + bytes([i])
    elif kind == 1:
        body = b""
    elif kind == 2:
        body = ('{"event":"n%d","text":"h\u00e9llo"}' % i).encode()
    else:
        body = os.urandom(3000 + i)
    if i % 6 == 0:
        target = b"/fb/%d/raw\xff\xfe?n=%d" % (i, i)  # not UTF-8: record needs target_b64
    else:
        target = "/fb/%d?n=%d&x=%%20&u=\u00e9" % (i, i)
    req = Req(METHODS[i % len(METHODS)], target, headers, body)
    req.label = label
    return req


def send_all(srv, reqs, nconn):
    """Sends reqs over nconn keep-alive connections concurrently; returns
    [(Response, Req)] in the order of reqs."""
    def worker(k):
        out = []
        c = None
        try:
            for idx in range(k, len(reqs), nconn):
                if c is None:
                    c = HTTPConn(srv.port, timeout=30)
                r = reqs[idx]
                c.send(r.raw)
                resp = c.read_response()
                r.peer = c.local_peer
                out.append((idx, resp))
                if (resp.header("connection") or "").lower() == "close":
                    c.close()  # soldr may close after an error answer: reconnect
                    c = None
        finally:
            if c is not None:
                c.close()
        return out

    got = {}
    for part in run_threads(worker, [(k,) for k in range(nconn)], timeout=90):
        for idx, resp in part:
            got[idx] = resp
    return [(got.get(i), r) for i, r in enumerate(reqs)]


def replay(path_or_dash, data_dir, input=None):
    return run_soldr("replay", path_or_dash, "--data-dir", data_dir, input=input, timeout=60)


class Fallback(SoldrTestCase):
    """One soldr, its write lock held from Python longer than --busy-timeout
    while N requests come in: every one is logged to stdout, then acked."""

    @classmethod
    def setUpClass(cls):
        scope = ClassScope(cls)
        require_binary(scope)
        srv = cls.srv = Soldr(scope, "--busy-timeout", "200ms").start()
        # one request before the lock: committed normally
        with srv.connect() as c:
            pre = Req("POST", "/pre", [("Host", srv.host("fb0"))], b"before the lock")
            c.send(pre.raw)
            cls.pre_resp = c.read_response()
        cls.reqs = [make_request(srv, i) for i in range(N)]
        lock = WriteLock(srv.db_path).acquire()
        cls.addClassCleanup(lock.release)
        cls.t0 = now_ms()
        cls.results = send_all(srv, cls.reqs, NCONN)
        cls.t1 = now_ms()
        lock.release()
        # and one after: committed normally again
        with srv.connect() as c:
            post = Req("POST", "/post", [("Host", srv.host("fb1"))], b"after the lock")
            c.send(post.raw)
            cls.post_resp = c.read_response()
        cls.stop_rc = srv.stop()
        cls.stdout = srv.stdout_bytes()
        cls.acked = {}
        for resp, req in cls.results:
            if resp is not None and resp.status == 200:
                try:
                    cls.acked[json.loads(resp.body)["id"]] = req
                except (ValueError, KeyError):
                    pass
        db = open_db_ro(srv.db_path, scope)
        cls.in_db_before_replay = {rid for rid in cls.acked if fetch_request(db, rid)}
        cls.rows_before_replay = count_requests(db)
        db.close()

    def records(self):
        return parse_records(self.stdout, self)

    def check_rows(self, db, recs_by_id):
        """Every acked request is in db exactly as it was sent."""
        for rid, req in self.acked.items():
            row = fetch_request(db, rid)
            self.assertIsNotNone(row, "id %s not restored" % rid)
            self.assertEqual(row["webhook"], req.label, rid)
            self.assertEqual(row["method"].encode(), req.method, rid)
            self.assertEqual(row["target"], req.target, rid)
            self.assertEqual(row["headers"], req.header_block, rid)
            self.assertEqual(row["body"], req.body, rid)
            self.assertEqual(row["peer"], req.peer, rid)
            self.assertEqual(row["received_at"], recs_by_id[rid]["received_at"], rid)
            self.assertEqual(row["state"], "pending", rid)

    def fresh_data_dir(self):
        d = os.path.join(make_tempdir(self), "data")
        os.makedirs(d)
        return d

    # -- the ingest side ---------------------------------------------------

    def test_every_request_acked_with_an_id(self):
        self.assertAck(self.pre_resp)
        bad = [(i, resp) for i, (resp, _) in enumerate(self.results)
               if resp is None or resp.status != 200]
        self.assertEqual(bad, [], "not all requests were acked while the DB was locked")
        for resp, _ in self.results:
            self.assertUUID7(self.assertAck(resp), self.t0, self.t1)
        self.assertEqual(len(self.acked), N, "duplicate ids")

    def test_stdout_holds_exactly_the_acked_requests(self):
        recs = self.records()
        ids = [r.get("id") for r in recs]
        self.assertEqual(len(ids), len(set(ids)), "a request was logged twice")
        self.assertEqual(set(ids), set(self.acked))
        for rec in recs:
            req = self.acked[rec["id"]]
            self.assertEqual(rec["type"], "soldr.request")
            self.assertEqual(rec["v"], 1)
            self.assertEqual(rec["webhook"], req.label)
            self.assertIn(rec["host"].encode(), (req.host_header(),
                                                 req.host_header().rsplit(b":", 1)[0]))
            self.assertEqual(rec["method"].encode(), req.method)
            self.assertEqual(record_target(rec), req.target)
            self.assertEqual(record_headers(rec), req.headers)
            self.assertEqual(record_body(rec), req.body)
            self.assertEqual(rec["peer"], req.peer)
            self.assertIsInstance(rec["received_at"], int)
            self.assertGreaterEqual(rec["received_at"], self.t0 - 50)
            self.assertLessEqual(rec["received_at"], self.t1 + 50)
            if b"\xff" in req.target:
                self.assertIn("target_b64", rec, "non-UTF-8 target sent as plain JSON text")
            else:
                self.assertIn("target", rec, "a clean target should stay readable")
            if any(n == b"X-Raw" for n, _ in req.headers):
                self.assertIn("headers_b64", rec, "non-UTF-8 header sent as plain JSON text")
            else:
                self.assertIn("headers", rec, "clean headers should stay readable")
        # one JSON object per line, nothing else on stdout
        self.assertTrue(self.stdout.endswith(b"\n"))
        self.assertEqual(len([ln for ln in self.stdout.split(b"\n") if ln]), N)

    def test_logged_requests_not_in_db_but_others_are(self):
        self.assertEqual(self.in_db_before_replay, set(),
                         "requests both logged and committed")
        self.assertEqual(self.rows_before_replay, 2, "only the pre/post-lock requests")
        pre_id = self.assertAck(self.pre_resp)
        post_id = self.assertAck(self.post_resp)
        self.assertNotIn(pre_id, self.stdout.decode("utf-8", "replace"))
        self.assertNotIn(post_id, self.stdout.decode("utf-8", "replace"))

    def test_clean_exit_and_commit_failure_logged(self):
        self.assertEqual(self.stop_rc, 0, self.srv.stderr_text()[-4000:])
        self.assertTrue(self.srv.stderr_text().strip(), "commit failures should be logged")

    # -- replay ------------------------------------------------------------

    def test_replay_into_the_same_db_twice(self):
        recs = {r["id"]: r for r in self.records()}
        p = replay(self.srv.stdout_path, self.srv.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(),
                         "restored %d, already present 0, malformed 0" % N, p.stderr)
        db = open_db_ro(self.srv.db_path, self)
        self.check_rows(db, recs)
        self.assertEqual(count_requests(db), N + 2)
        p = replay(self.srv.stdout_path, self.srv.data_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(),
                         "restored 0, already present %d, malformed 0" % N, p.stderr)
        self.assertEqual(count_requests(db), N + 2)

    def test_replay_journal_style_with_junk_into_fresh_dir(self):
        recs = {r["id"]: r for r in self.records()}
        lines = [b"-- Logs begin at Mon 2024-11-18 10:00:00 UTC. --",
                 b'{"ts":"2024-11-22T05:03:48.123Z","level":"error",'
                 b'"event":"store.commit_failed","msg":"database is locked"}',
                 b"", b"some unrelated text", b"{not json at all"]
        for i, ln in enumerate(self.stdout.split(b"\n")):
            if not ln:
                continue
            if i % 2:
                lines.append(b"Nov 22 05:03:48 host soldr[123]: " + ln)
            else:
                lines.append(ln)
            if i % 10 == 0:
                lines.append(b'Nov 22 05:03:49 host soldr[123]: {"ts":"x","level":"info",'
                             b'"event":"ingest.conn","msg":"hello"}')
        path = os.path.join(make_tempdir(self), "journal.txt")
        with open(path, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        data = self.fresh_data_dir()
        p = replay(path, data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(),
                         "restored %d, already present 0, malformed 0" % N, p.stderr)
        db = open_db_ro(os.path.join(data, "soldr.db"), self)
        self.check_rows(db, recs)
        self.assertEqual(count_requests(db), N)

    def test_replay_from_stdin(self):
        half = b"\n".join(self.stdout.split(b"\n")[:N // 2]) + b"\n"
        data = self.fresh_data_dir()
        p = replay("-", data, input=half)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(),
                         "restored %d, already present 0, malformed 0" % (N // 2), p.stderr)
        p = replay("-", data, input=self.stdout)
        self.assertEqual(p.stdout.decode().strip(),
                         "restored %d, already present %d, malformed 0" % (N - N // 2, N // 2))
        self.assertEqual(count_requests(open_db_ro(os.path.join(data, "soldr.db"), self)), N)

    def test_replay_broken_records_are_malformed(self):
        lines = [ln for ln in self.stdout.split(b"\n") if ln]
        bad_id = json.loads(lines[3])
        bad_id["id"] = "not-a-uuid"
        content = b"\n".join([
            lines[0],
            lines[1][:len(lines[1]) // 2],                      # truncated record
            b"Nov 22 05:03:48 host soldr[123]: " + lines[2][:-7],  # truncated, prefixed
            json.dumps(bad_id, separators=(",", ":")).encode(),
            lines[4],
        ]) + b"\n"
        path = os.path.join(make_tempdir(self), "broken.log")
        with open(path, "wb") as f:
            f.write(content)
        data = self.fresh_data_dir()
        p = replay(path, data)
        self.assertEqual(p.returncode, 1, (p.stdout, p.stderr))
        self.assertEqual(p.stdout.decode().strip(),
                         "restored 2, already present 0, malformed 3", p.stderr)
        db = open_db_ro(os.path.join(data, "soldr.db"), self)
        ids = {json.loads(lines[0])["id"], json.loads(lines[4])["id"]}
        self.assertEqual({r[0].decode() for r in db.execute("SELECT id FROM requests")}, ids)

    def test_replay_missing_file_fails(self):
        p = replay(os.path.join(tempfile.gettempdir(), "soldr-no-such-file.log"),
                   self.fresh_data_dir())
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(p.stderr.strip())


class Shutdown(SoldrTestCase):

    def test_sigterm_answers_requests_already_received(self):
        srv = Soldr(self, "--busy-timeout", "1500ms").start()
        lock = WriteLock(srv.db_path).acquire()
        self.addCleanup(lock.release)
        c = srv.connect()
        self.addCleanup(c.close)
        req = Req("POST", "/late", [("Host", srv.host("bye"))], b"in flight at SIGTERM")
        c.send(req.raw)
        time.sleep(0.2)  # the request is read and waiting for the locked DB
        srv.terminate()
        time.sleep(0.3)
        lock.release()
        rid = self.assertAck(c.read_response())
        self.assertEqual(srv.wait(), 0, srv.stderr_text()[-4000:])
        row = fetch_request(open_db_ro(srv.db_path, self), rid)
        logged = [r for r in srv.stdout_records() if r["id"] == rid]
        self.assertTrue(row is not None or logged, "acked at shutdown but lost")
        if row is not None:
            self.assertEqual(row["body"], req.body)
        else:
            self.assertEqual(record_body(logged[0]), req.body)


class StdoutFailsToo(SoldrTestCase):

    def test_503_with_retry_after_when_db_and_stdout_fail(self):
        srv = Soldr(self, "--busy-timeout", "200ms", stdout_path="/dev/full").start()
        reqs = [Req("POST", "/x/%d" % i, [("Host", srv.host("full"))], b"body %d" % i)
                for i in range(6)]
        with WriteLock(srv.db_path):
            results = send_all(srv, reqs, 3)
        for resp, req in results:
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 503, "%r answered %r with neither DB nor stdout"
                             % (req.target, resp))
            ra = resp.header("retry-after")
            self.assertIsNotNone(ra, resp)
            self.assertTrue(ra.strip().isdigit() and int(ra) > 0, "Retry-After: %r" % ra)
        srv.assert_alive()
        db = srv.db()
        self.assertEqual(count_requests(db), 0)
        # lock gone: the DB takes requests again
        resp, _ = srv.send("full", b"works again")
        rid = self.assertAck(resp)
        self.assertEqual(fetch_request(db, rid)["body"], b"works again")


class DiskFull(SoldrTestCase):
    """Data dir on a tiny tmpfs: once it is full, requests go to stdout."""

    def mount_tmpfs(self, size="3m"):
        mnt = tempfile.mkdtemp(prefix="soldr-e2e-tmpfs-")
        self.addCleanup(os.rmdir, mnt)
        try:
            p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", mnt],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        except (OSError, subprocess.SubprocessError) as e:
            self.skipTest("cannot mount tmpfs: %s" % e)
        if p.returncode != 0:
            self.skipTest("cannot mount tmpfs (needs root / CAP_SYS_ADMIN): %s"
                          % p.stderr.decode(errors="replace").strip())
        self.addCleanup(self.umount, mnt)
        return mnt

    @staticmethod
    def umount(mnt):
        if subprocess.run(["umount", mnt]).returncode != 0:
            subprocess.run(["umount", "-l", mnt])

    def test_disk_full_every_ack_is_stored_or_logged(self):
        mnt = self.mount_tmpfs()
        srv = Soldr(self, "--busy-timeout", "200ms", data_dir=os.path.join(mnt, "data"))
        srv.start()
        acked = {}
        logged_at = None
        with srv.connect(timeout=30) as c:
            for i in range(400):
                body = b"%05d" % i + os.urandom(64 * 1024)
                req = Req("POST", "/fill/%d" % i, [("Host", srv.host("disk"))], body)
                c.send(req.raw)
                resp = c.read_response()
                self.assertEqual(resp.status, 200, "request %d: %r" % (i, resp))
                acked[self.assertAck(resp)] = body
                if logged_at is None and os.path.getsize(srv.stdout_path) > 0:
                    logged_at = i
                if logged_at is not None and i >= logged_at + 10:
                    break
        self.assertIsNotNone(logged_at, "3 MiB tmpfs never filled up after %d x 64 KiB"
                             % len(acked))
        srv.assert_alive()
        srv.stop()

        recs = {r["id"]: r for r in srv.stdout_records()}
        # read the DB from a copy on normal disk (the full tmpfs may not take a -shm)
        copy = make_tempdir(self)
        for suffix in ("", "-wal"):
            src = os.path.join(srv.data_dir, "soldr.db" + suffix)
            if os.path.exists(src):
                shutil.copy(src, copy)
        db = open_db_ro(os.path.join(copy, "soldr.db"), self)
        in_db = {rid for rid in acked if fetch_request(db, rid)}
        lost = set(acked) - in_db - set(recs)
        self.assertEqual(lost, set(), "acked but neither stored nor logged")
        sys.stderr.write("[%d acked: %d stored, %d logged] " % (len(acked), len(in_db), len(recs)))
        self.assertGreater(len(in_db), 0)
        self.assertGreater(len(recs), 0)
        for rid in in_db:
            self.assertEqual(fetch_request(db, rid)["body"], acked[rid])
        self.assertLessEqual(set(recs), set(acked), "logged ids that were never acked")
        for rid, rec in recs.items():
            self.assertEqual(record_body(rec), acked[rid])

        data = os.path.join(make_tempdir(self), "data")
        os.makedirs(data)
        p = replay(srv.stdout_path, data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(),
                         "restored %d, already present 0, malformed 0" % len(recs), p.stderr)
        db2 = open_db_ro(os.path.join(data, "soldr.db"), self)
        for rid in recs:
            self.assertEqual(fetch_request(db2, rid)["body"], acked[rid])


if __name__ == "__main__":
    unittest.main()
