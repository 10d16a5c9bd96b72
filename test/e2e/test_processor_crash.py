"""End-to-end: kill -9 soldr while deliveries are in flight, restart it on the
same data directory, and check that nothing is lost and that the only
duplicates are requests that were in flight at the kill (and so carry an
'interrupted' attempt row)."""

import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from soldr_harness import Req, Soldr, SoldrTestCase, run_threads  # noqa: E402
from sinks import DestServer, Reply, state_counts, wait_until, webhook_cli  # noqa: E402


class CrashRecovery(SoldrTestCase):

    N = 500
    SENDERS = 10

    def test_kill9_during_deliveries(self):
        dest = DestServer(self, default=Reply(200, body=b"ok", delay=(0.05, 0.2)))
        srv = Soldr(self).start()
        webhook_cli(self, srv.data_dir, "add", "crashy", dest.url("/in"),
                    "--max-concurrency", "8", "--backoff-base", "100ms", "--backoff-cap", "1s")
        per = self.N // self.SENDERS

        def sender(k):
            out = []
            with srv.connect(timeout=30) as c:
                for i in range(per):
                    c.send(Req("POST", "/c", [("Host", srv.host("crashy"))],
                               b"%d-%d" % (k, i)).raw)
                    resp = c.read_response()
                    if resp.status != 200:
                        raise AssertionError("ingest answered %r" % resp)
                    out.append(resp.json()["id"])
            return out

        ids = [x for chunk in run_threads(sender, [(k,) for k in range(self.SENDERS)], timeout=60)
               for x in chunk]
        self.assertEqual(len(set(ids)), self.N)

        # kill -9 once a good part went out and some deliveries are in flight
        def in_flight():
            return dest.count() >= self.N // 5 and dest.inflight > 0
        if not wait_until(in_flight, 30, 0.005):
            srv.assert_alive()
            self.fail("deliveries never got going: %d hits, states %r"
                      % (dest.count(), state_counts(srv.db())))
        inflight_at_kill = dest.inflight
        srv.proc.kill()
        srv.proc.wait()
        srv.stop()  # records the exit: the kill was ours
        hits_at_kill = dest.count()

        # what the dead process left behind (best effort: a read-only look)
        sending = set()
        try:
            c = sqlite3.connect("file:%s?mode=ro" % srv.db_path, uri=True, timeout=10)
            sending = {r[0] for r in c.execute("SELECT id FROM requests WHERE state = 'sending'")}
            c.close()
        except sqlite3.Error as e:
            sys.stderr.write("\n[crash] could not read the database after the kill: %s\n" % e)

        srv2 = Soldr(self, data_dir=srv.data_dir).start()
        conn = srv2.db()

        def all_delivered():
            return conn.execute("SELECT count(*) FROM requests WHERE state = 'delivered'"
                                ).fetchone()[0] >= self.N
        ok = wait_until(all_delivered, 40, 0.1)
        time.sleep(0.5)
        counts = dest.id_counts()
        interrupted = {r[0].decode() for r in conn.execute(
            "SELECT DISTINCT r.id FROM attempts a JOIN requests r ON r.seq = a.request_seq "
            "WHERE a.error = 'interrupted'")}
        dups = {k: v for k, v in counts.items() if v > 1}
        states = state_counts(conn)
        sys.stderr.write(
            "\n[crash] %d requests; at the kill: %d hits, %d in flight at the destination, "
            "%d rows 'sending'; after restart: states %r, %d ids delivered twice or more, "
            "%d requests with an 'interrupted' attempt\n"
            % (self.N, hits_at_kill, inflight_at_kill, len(sending), states, len(dups),
               len(interrupted)))

        self.assertTrue(ok, "not all delivered 40 s after the restart: %r" % states)
        self.assertEqual(states, {"delivered": self.N})
        missing = set(ids) - set(counts)
        self.assertEqual(missing, set(), "%d stored ids never reached the destination"
                         % len(missing))
        self.assertEqual(set(counts) - set(ids), set(), "ids nobody sent reached the destination")
        self.assertEqual({k for k in dups if k not in interrupted}, set(),
                         "delivered twice without an 'interrupted' attempt row")
        self.assertTrue(all(v == 2 for v in dups.values()), dups)
        self.assertTrue(interrupted, "requests were in flight at the kill, yet no attempt "
                                     "row says 'interrupted'")
        if sending:
            self.assertEqual(sending - interrupted, set(),
                             "rows left 'sending' by the crash got no 'interrupted' attempt")
            self.assertEqual(interrupted - sending, set(),
                             "'interrupted' attempts for rows that were not 'sending'")
        # an interrupted attempt records no HTTP status
        self.assertEqual(conn.execute("SELECT count(*) FROM attempts WHERE error = 'interrupted' "
                                      "AND status IS NOT NULL").fetchone()[0], 0)
        self.assertEqual(conn.execute("SELECT count(*) FROM requests WHERE state = 'sending'"
                                      ).fetchone()[0], 0)


if __name__ == "__main__":
    unittest.main()
