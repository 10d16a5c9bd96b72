"""Crash suite: a Jepsen-style set test of the ack rule under kill -9.

A load generator sends webhooks without pause (keep-alive and fresh
connections, a unique payload id per attempt) while soldr is killed with
SIGKILL at random moments -- some while deliveries are in flight, some right
after a start while it recovers -- and started again on the same data
directory, each run with its own stdout file. A local destination (sinks.py)
receives the deliveries with a few ms of delay and counts webhook-ids.

At the end:
  - every acknowledged payload (200 + id) is in the database or in a stdout
    record; the stdout files are replayed and then every one is in the
    database, body intact (lost = 0, or the test fails);
  - every stored request ends 'delivered' (waited for with a timeout);
  - every webhook-id the destination saw n > 1 times has at least n - 1
    'interrupted' attempt rows (it was in flight at a kill); rows seen in
    state 'sending' right after a kill all got an 'interrupted' attempt.

Knobs (environment): RELIABILITY_KILLS (20), RELIABILITY_RATE (requests/s per
sender thread, 40), RELIABILITY_SENDERS ("4,2": keep-alive,fresh threads),
RELIABILITY_SEED (random), RELIABILITY_DELIVERY_TIMEOUT (s, 90).
"""

import collections
import os
import random
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from relcommon import (  # noqa: E402
    SEED, AckCheck, Daemon, LoadGen, connect_ro, env_float, env_int, note, pid_of_body,
    replay, stored_bodies, webhook_add)
from sinks import DestServer, Reply, wait_until  # noqa: E402

KILLS = env_int("RELIABILITY_KILLS", 20)
RATE = env_float("RELIABILITY_RATE", 40)
SENDERS = [int(x) for x in (os.environ.get("RELIABILITY_SENDERS") or "4,2").split(",")]
DELIVERY_TIMEOUT = env_float("RELIABILITY_DELIVERY_TIMEOUT", 90)


def sending_rows(db_path):
    """Ids left 'sending' by a dead process (read-only look; None if unreadable)."""
    try:
        c = connect_ro(db_path)
        try:
            return {r[0] for r in c.execute("SELECT id FROM requests WHERE state = 'sending'")}
        finally:
            c.close()
    except sqlite3.Error as e:
        note("could not read the database after a kill: %s" % e)
        return None


class CrashSetTest(unittest.TestCase):

    def test_kill9_at_random_moments(self):
        rng = random.Random(SEED)
        note("crash suite: seed %d (RELIABILITY_SEED=%d reproduces the kill schedule), "
             "%d kills" % (SEED, SEED, KILLS))
        dest = DestServer(self, default=Reply(200, body=b"ok", delay=(0.001, 0.008)))
        srv = Daemon(self, "--shutdown-grace", "2s")
        webhook_add(self, srv.data_dir, "crash", dest.url("/hook"),
                    "--max-concurrency", "16", "--timeout", "5s",
                    "--backoff-base", "100ms", "--backoff-cap", "1s", "--max-attempts", "50")
        srv.start()
        load = LoadGen(srv.port, label="crash", keepalive=SENDERS[0], fresh=SENDERS[1],
                       rate=RATE, run="c", seed=SEED).start()
        self.addCleanup(load.stopping.set)

        kinds = collections.Counter()
        sending_at_kills = set()
        unreadable = 0
        t_start = time.monotonic()
        self.assertTrue(load.wait_acks(50, 20), "no load got through: %r" % load.summary())
        for k in range(KILLS):
            r = rng.random()
            if r < 0.2:
                kind = "early"      # during start-up recovery / first claims
                time.sleep(rng.uniform(0.0, 0.05))
            elif r < 0.55:
                kind = "inflight"   # while the destination holds deliveries
                time.sleep(rng.uniform(0.1, 0.8))
                wait_until(lambda: dest.inflight > 0, rng.uniform(0.2, 1.0), 0.001)
            else:
                kind = "random"
                time.sleep(rng.uniform(0.1, 1.5))
            kinds[kind] += 1
            self.assertTrue(srv.alive(), "soldr died on its own before kill %d (status %s)\n%s"
                            % (k + 1, srv.proc.poll(), srv.stderr_text()[-6000:]))
            srv.kill9()
            s = sending_rows(srv.db_path)
            if s is None:
                unreadable += 1
            else:
                sending_at_kills |= s
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.0, 0.2))  # down for a moment: senders are refused
            srv.start()
        self.assertTrue(load.wait_acks(50, 20), "no progress after the last restart: %r"
                        % load.summary())
        load.stop()
        t_kills = time.monotonic() - t_start
        rc = srv.term()
        self.assertEqual(rc, 0, "exit status %s after SIGTERM\n%s" % (rc, srv.stderr_text()[-4000:]))

        acked = load.acked()
        outcomes = load.snapshot()
        before = AckCheck(acked, stored_bodies(srv.db_path), srv.records())
        note("after %d kills in %.1f s (%s): %s; attempts: %r"
             % (KILLS, t_kills, dict(kinds), before.line(), load.summary()))

        # replay every run's stdout file (twice for the first: idempotent)
        restored = present = 0
        for i, path in enumerate(srv.stdout_paths):
            if os.path.getsize(path) == 0:
                continue
            r, a, m, p = replay(srv.data_dir, path)
            self.assertEqual((p.returncode, m), (0, 0), "replay of %s: %s %s"
                             % (path, p.stdout, p.stderr))
            restored += r
            present += a
            if i == 0:
                r2, a2, _, _ = replay(srv.data_dir, path)
                self.assertEqual(r2, 0, "a second replay restored records again")
        after = AckCheck(acked, stored_bodies(srv.db_path), srv.records())
        note("replay: %d restored, %d already present; now %s" % (restored, present, after.line()))

        # deliveries: everything stored ends delivered
        srv.start()
        db_path = srv.db_path

        def undelivered():
            c = connect_ro(db_path)
            try:
                return c.execute("SELECT count(*) FROM requests WHERE state != 'delivered'"
                                 ).fetchone()[0]
            finally:
                c.close()
        t0 = time.monotonic()
        done = wait_until(lambda: undelivered() == 0, DELIVERY_TIMEOUT, 0.2)
        t_deliver = time.monotonic() - t0
        time.sleep(0.3)
        rc = srv.term()
        self.assertEqual(rc, 0)

        c = connect_ro(db_path)
        self.addCleanup(c.close)
        state_counts = dict(c.execute("SELECT state, count(*) FROM requests GROUP BY state"))
        all_ids = {r[0] for r in c.execute("SELECT id FROM requests")}
        interrupted = collections.Counter(r[0] for r in c.execute(
            "SELECT r.id FROM attempts a JOIN requests r ON r.seq = a.request_seq "
            "WHERE a.error = 'interrupted'"))
        counts = dest.id_counts()
        dups = {wid: n for wid, n in counts.items() if n > 1}
        unexplained = {wid: (n, interrupted.get(wid, 0)) for wid, n in dups.items()
                       if interrupted.get(wid, 0) < n - 1}
        never_delivered = all_ids - set(counts)
        foreign = set(counts) - all_ids
        sending_no_mark = {i for i in sending_at_kills if i in all_ids and not interrupted.get(i)}
        unacked = [o for o in outcomes if o.status != 200]
        stored_pids = {pid_of_body(b) for b in stored_bodies(db_path).values()}
        unacked_stored = sum(1 for o in unacked if o.pid in stored_pids)

        note("RESULT crash: kills=%d acknowledged=%d lost=%d (unacknowledged attempts %d, of "
             "which %d were stored anyway) stored=%d delivered=%d states=%r "
             "duplicate deliveries=%d (all with an 'interrupted' attempt: %s) "
             "requests with 'interrupted' attempts=%d, 'sending' rows seen after kills=%d%s; "
             "all delivered %.1f s after the final start"
             % (KILLS, len(acked), len(after.lost), len(unacked), unacked_stored, len(all_ids),
                state_counts.get("delivered", 0), state_counts, sum(n - 1 for n in dups.values()),
                "yes" if not unexplained else "NO", len(interrupted), len(sending_at_kills),
                " (%d post-kill reads failed)" % unreadable if unreadable else "", t_deliver))

        self.assertEqual(before.lost, [], "acknowledged but neither in the database nor in "
                                          "stdout: %s" % before.lost[:20])
        self.assertEqual(after.lost, [], "acknowledged and still missing after replay: %s"
                         % after.lost[:20])
        self.assertEqual(after.corrupt, [], "stored with the wrong body: %s" % after.corrupt[:20])
        self.assertEqual(after.dup_payloads, [], "one payload stored under two ids: %s"
                         % after.dup_payloads[:20])
        self.assertGreater(len(acked), KILLS * 10, "too little load to mean anything")
        self.assertTrue(done, "%d requests not delivered %.0f s after the final start: %r"
                        % (undelivered(), DELIVERY_TIMEOUT, state_counts))
        self.assertEqual(never_delivered, set(), "delivered state but the destination never "
                                                 "saw: %s" % sorted(never_delivered)[:20])
        self.assertEqual(foreign, set(), "the destination got ids that are not stored")
        self.assertEqual(unexplained, {}, "delivered more than once without an 'interrupted' "
                                          "attempt for each extra: {id: (deliveries, "
                                          "interrupted)} %r" % dict(list(unexplained.items())[:20]))
        self.assertEqual(sending_no_mark, set(), "rows left 'sending' by a kill got no "
                                                 "'interrupted' attempt: %s"
                         % sorted(sending_no_mark)[:20])


if __name__ == "__main__":
    unittest.main()
