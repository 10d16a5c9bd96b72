"""Fault suite: storage fails under load, soldr keeps the ack rule.

Every case runs the same script against one soldr with a webhook pointing at
a local destination and a load generator sending ~200 webhooks/s:

  warm-up (all commit) -> fault on for FAULT_S -> fault off -> recovery probe
  -> load stops -> checks -> SIGTERM (exit 0) -> replay of stdout
  -> restart without the fault -> every stored request delivered.

Faults: faultfs.so (LD_PRELOAD, built by CMakeLists.txt: fails the Nth
pwrite/fdatasync/... on soldr.db or soldr.db-wal with EIO or ENOSPC, once or
until a control file appears), the database made immutable (chattr +i), a
second process holding the write lock (BEGIN EXCLUSIVE), a full filesystem
(a small tmpfs filled up), stdout failing too (/dev/full), and kill -9 while
fsync fails.

Checked in every case:
  - no acknowledged request lost: each 200 id is in the database or in a
    stdout record, and in the database after `soldr replay` (idempotent);
  - no crash: alive throughout, exit status 0 on SIGTERM;
  - status codes: 200 while stored or logged; 503 + Retry-After only when
    stdout fails too; no connection reset or timeout;
  - recovery: once the fault clears, a new request commits (in the database,
    not in stdout) within RECOVERY_S; GET /healthz (management port on)
    says 503 "failing" during the fault when commits failed, 200 after;
  - deliveries: every stored request ends delivered once soldr restarts.
Reported (not failed): requests left 'sending' after the fault in the same
process, and duplicate deliveries.

Knobs: RELIABILITY_FAULT_S (1.5), RELIABILITY_FAULT_RATE (req/s per sender,
50), FAULTFS_LIB (set by ctest; else test/reliability/build/faultfs.so if
present).
"""

import collections
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from relcommon import (  # noqa: E402
    FAULTFS_LIB, SEED, AckCheck, Daemon, HTTPConn, LoadGen, Req, connect_ro, env_float, free_port,
    known_bug, SANITIZED, make_tempdir, note, pid_of_body, replay, states, stored_bodies, webhook_add)
from sinks import DestServer, Reply, wait_until  # noqa: E402

FAULT_S = env_float("RELIABILITY_FAULT_S", 1.5)
RATE = env_float("RELIABILITY_FAULT_RATE", 50)
RECOVERY_S = 10.0
SECRET = "reliability-suite-secret-0123456789abcdef"

RESULTS = []


def healthz(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            with ctx.wrap_socket(s) as t:
                t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = t.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        return int(data.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError, ssl.SSLError):
        return None


class HealthPoller:
    def __init__(self, port):
        self.port = port
        self.seen = []  # (monotonic, status)
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.wait(0.05):
            self.seen.append((time.monotonic(), healthz(self.port)))

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)

    def during(self, t0, t1):
        return collections.Counter(s for t, s in self.seen if t0 <= t < t1)


def chattr_works(directory):
    p = os.path.join(directory, ".chattr-probe")
    open(p, "w").close()
    try:
        r = subprocess.run(["chattr", "+i", p], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            return False
        subprocess.run(["chattr", "-i", p])
        return True
    except OSError:
        return False
    finally:
        try:
            os.unlink(p)
        except OSError:
            pass


LOCKER = r"""
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
c.execute("ROLLBACK")
c.close()
"""


class Faults(unittest.TestCase):
    maxDiff = 2000

    @classmethod
    def tearDownClass(cls):
        if RESULTS:
            note("fault suite summary:\n  " + "\n  ".join(RESULTS))

    # -- the script every case follows -----------------------------------------

    def run_case(self, name, *, on, off, env=None, data_dir=None, stdout_fails=False,
                 expect_fallback=True, transient=False, kill_in_fault=False,
                 body_size=(64, 512), flog=None):
        tmp = make_tempdir(self, "soldr-rel-fault-")
        ctl = os.path.join(tmp, "ctl")
        os.makedirs(ctl)
        dest = DestServer(self, default=Reply(200, body=b"ok", delay=(0.001, 0.005)))
        mport = free_port()
        srv = Daemon(self, "--busy-timeout", "200ms", "--shutdown-grace", "2s",
                     "--mgmt-listen", "127.0.0.1:%d" % mport, "--mgmt-secret", SECRET,
                     data_dir=data_dir, env=env, tmp=tmp)
        webhook_add(self, srv.data_dir, "fault", dest.url("/hook"), "--max-concurrency", "8",
                    "--backoff-base", "100ms", "--backoff-cap", "1s", "--max-attempts", "50")
        if stdout_fails:
            srv.stdout_override = "/dev/full"
        srv.start()
        self.assertTrue(wait_until(lambda: healthz(mport) == 200, 5, 0.05), "no /healthz")
        health = HealthPoller(mport)
        self.addCleanup(health.stop)
        load = LoadGen(srv.port, label="fault", keepalive=3, fresh=1, rate=RATE,
                       run=re.sub(r"[^A-Za-z0-9]+", "_", name), body_size=body_size, seed=SEED).start()
        self.addCleanup(load.stopping.set)
        self.assertTrue(load.wait_acks(30, 10), "no load got through: %r" % load.summary())

        t_on = time.monotonic()
        ctx = on(srv, ctl)
        time.sleep(FAULT_S)
        restarted = False
        if kill_in_fault:
            self.assertTrue(srv.alive())
            srv.kill9()
            srv.stdout_override = None
            srv.start(env={"LD_PRELOAD": ""})
            restarted = True
        t_off = time.monotonic()
        off(srv, ctl, ctx)

        # recovery: a probe request commits (in the database, not logged)
        probe_ok, probe_s, probe_tries = False, None, 0
        while time.monotonic() - t_off < RECOVERY_S:
            probe_tries += 1
            try:
                with HTTPConn(srv.port, timeout=10) as c:
                    c.send(Req("POST", "/probe/%d" % probe_tries,
                               [("Host", srv.host("fault"))], b'{"pid":"probe"}').raw)
                    r = c.read_response()
                if r.status == 200:
                    sid = r.json()["id"]
                    if sid in stored_bodies(srv.db_path) and sid not in srv.records():
                        probe_ok, probe_s = True, time.monotonic() - t_off
                        break
            except OSError:
                pass
            time.sleep(0.05)
        time.sleep(0.3)
        load.stop()
        alive = srv.alive()
        rc_status = None if alive else srv.proc.returncode
        health.stop()
        # a commit after the fault has cleared: /healthz must say ok again
        health_after = wait_until(lambda: healthz(mport) == 200, 5, 0.1)

        # the first process (or the restarted one) finishes its deliveries
        c = connect_ro(srv.db_path)

        def stuck():
            return dict(c.execute("SELECT state, count(*) FROM requests WHERE state != "
                                  "'delivered' GROUP BY state"))
        wait_until(lambda: not stuck(), 5, 0.1)
        stuck_after = stuck()
        c.close()
        rc = srv.term()

        outs = load.snapshot()
        statuses = collections.Counter(o.status if o.status is not None else o.error for o in outs)
        in_fault = collections.Counter(o.status if o.status is not None else o.error
                                       for o in outs if t_on <= o.t0 < t_off + 0.25)
        outside = collections.Counter(o.status if o.status is not None else o.error
                                      for o in outs if not (t_on - 0.25 <= o.t0 < t_off + 0.25))
        bad_503 = [o for o in outs if o.status == 503 and not (o.retry_after or "").strip().isdigit()]
        acked = load.acked()
        records = srv.records()
        chk = AckCheck(acked, stored_bodies(srv.db_path), records)
        restored = present = 0
        for path in srv.stdout_paths:
            if os.path.exists(path) and os.path.getsize(path):
                r, a, m, p = replay(srv.data_dir, path)
                self.assertEqual((p.returncode, m), (0, 0), p.stdout + p.stderr)
                restored += r
                present += a
        after = AckCheck(acked, stored_bodies(srv.db_path), records)

        # deliveries after a clean restart
        srv.stdout_override = None
        srv.start(env={"LD_PRELOAD": ""})
        db = srv.db_path
        delivered_all = wait_until(lambda: set(states(db)) <= {"delivered"}, 30, 0.1)
        final_states = states(db)
        rc2 = srv.term()
        c = connect_ro(db)
        ids = {r[0] for r in c.execute("SELECT id FROM requests")}
        c.close()
        stored_pids = {pid_of_body(b) for b in stored_bodies(db).values()}
        refused_but_stored = sorted(o.pid for o in outs if o.status == 503 and o.pid in stored_pids)
        seq = [st for t, st in health.seen if t_on <= t < t_off and st is not None]
        flaps = sum(1 for i in range(1, len(seq) - 1)
                    if seq[i] == 200 and seq[i - 1] == 503 and 503 in seq[i + 1:])
        counts = dest.id_counts()
        dups = sum(n - 1 for n in counts.values() if n > 1)
        h_fault = health.during(t_on, t_off)
        err = srv.stderr_text()
        failed_batches = err.count('"event":"store.batch_failed"')
        unrecorded = err.count('"event":"processor.record_failed"')
        faults_logged = 0
        if flog and os.path.exists(flog):
            with open(flog) as f:
                faults_logged = sum(1 for _ in f)

        res = ("%-22s acked %5d, lost %d, in stdout %3d (both db+stdout %d), statuses %s, "
               "during fault %s, recovery %s, healthz in fault %s / after %s, "
               "faults injected %d, failed batches %d, outcomes not recorded %d, "
               "'sending' left after recovery %d, duplicate deliveries %d, "
               "503 but stored %d, healthz 503->200->503 flaps %d, exit %s"
               % (name, len(acked), len(after.lost), len(records), len(chk.both), dict(statuses),
                  dict(in_fault), "%.2f s" % probe_s if probe_s is not None else "NONE",
                  dict(h_fault), 200 if health_after else "NOT 200", faults_logged,
                  failed_batches, unrecorded, stuck_after.get("sending", 0), dups,
                  len(refused_but_stored), flaps, rc))
        RESULTS.append(res)
        note(res)
        if stuck_after:
            note("%s: not delivered before the restart: %r" % (name, stuck_after))

        # -- assertions ---------------------------------------------------------
        self.assertTrue(alive, "%s: soldr died (status %s)\n%s"
                        % (name, rc_status, srv.stderr_text()[-6000:]))
        self.assertEqual(rc, 0, "%s: exit status after SIGTERM" % name)
        self.assertEqual(chk.lost, [], "%s: acknowledged, neither stored nor logged" % name)
        self.assertEqual(after.lost, [], "%s: missing after replay" % name)
        self.assertEqual(after.corrupt, [], name)
        self.assertEqual(restored + present, len(records), "%s: replay counts" % name)
        allowed = {200, 503} if stdout_fails else {200}
        if restarted:
            allowed |= {"refused", "reset"}
        self.assertEqual(set(statuses) - allowed, set(), "%s: unexpected outcomes %r"
                         % (name, dict(statuses)))
        self.assertEqual(bad_503, [], "%s: 503 without a numeric Retry-After" % name)
        self.assertEqual(refused_but_stored, [], "%s: answered 503 yet stored (the sender will "
                         "send it again)" % name)
        if stdout_fails:
            self.assertEqual(set(outside) - {200} - ({"refused", "reset"} if restarted else set()),
                             set(), "%s: 503 outside the fault" % name)
            self.assertEqual(records, {}, name)
        if transient:
            # one failed operation: some batch failed (inserts in it went to
            # stdout, processor outcomes in it were not recorded)
            self.assertGreater(failed_batches, 0, "%s: the fault did not fail a commit "
                               "(faults injected: %d)" % (name, faults_logged))
        elif expect_fallback:
            if stdout_fails:
                self.assertGreater(in_fault.get(503, 0), 0, "%s: the fault never showed" % name)
            else:
                self.assertGreater(len(records), 0, "%s: no request went to stdout: the fault "
                                   "did not bite (faults injected: %d)" % (name, faults_logged))
            if not restarted:
                self.assertGreater(h_fault.get(503, 0), 0, "%s: /healthz never said 503 during "
                                   "the fault: %r" % (name, dict(h_fault)))
        self.assertTrue(probe_ok, "%s: nothing committed within %.0f s after the fault cleared"
                        "\n%s" % (name, RECOVERY_S, srv.stderr_text()[-4000:]))
        self.assertTrue(health_after, "%s: /healthz not 200 after recovery" % name)
        self.assertTrue(delivered_all, "%s: not all delivered after the restart: %r"
                        % (name, final_states))
        self.assertEqual(rc2, 0)
        self.assertEqual(ids - set(counts), set(), "%s: stored ids never delivered" % name)

    # -- faultfs ---------------------------------------------------------------

    def faultfs_env(self, ctl_dir, **kw):
        if not FAULTFS_LIB or not os.path.exists(FAULTFS_LIB):
            self.skipTest("faultfs.so not built (FAULTFS_LIB=%r)" % FAULTFS_LIB)
        env = {"LD_PRELOAD": FAULTFS_LIB, "FAULTFS_ARM_FILE": os.path.join(ctl_dir, "arm"),
               "FAULTFS_CLEAR_FILE": os.path.join(ctl_dir, "clear"),
               "FAULTFS_LOG": os.path.join(ctl_dir, "faults.log")}
        env.update({k: str(v) for k, v in kw.items()})
        if SANITIZED:
            # faultfs.so is preloaded ahead of the sanitizer runtime; its
            # interceptors still come first, so the order check may go.
            asan = os.environ.get("ASAN_OPTIONS", "")
            env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        return env

    def faultfs_case(self, name, **kw):
        ctl_dir = make_tempdir(self, "soldr-rel-ctl-")
        env = self.faultfs_env(ctl_dir, **{k: v for k, v in kw.items() if k.startswith("FAULTFS_")})

        def on(srv, ctl):
            open(os.path.join(ctl_dir, "arm"), "w").close()

        def off(srv, ctl, ctx):
            open(os.path.join(ctl_dir, "clear"), "w").close()

        opts = {k: v for k, v in kw.items() if not k.startswith("FAULTFS_")}
        self.run_case(name, on=on, off=off, env=env, flog=os.path.join(ctl_dir, "faults.log"),
                      **opts)

    def test_01_wal_pwrite_eio_once(self):
        self.faultfs_case("wal pwrite EIO once", FAULTFS_OPS="pwrite", FAULTFS_ERRNO="EIO",
                          FAULTFS_FAIL_AFTER=5, FAULTFS_MODE="once", transient=True)

    def test_02_wal_fdatasync_eio_once(self):
        self.faultfs_case("fdatasync EIO once", FAULTFS_OPS="fdatasync", FAULTFS_ERRNO="EIO",
                          FAULTFS_FAIL_AFTER=3, FAULTFS_MODE="once", transient=True)

    def test_03_pwrite_enospc_until_cleared(self):
        self.faultfs_case("pwrite ENOSPC episode", FAULTFS_OPS="pwrite", FAULTFS_ERRNO="ENOSPC",
                          FAULTFS_FAIL_AFTER=1, FAULTFS_MODE="until-cleared")

    def test_04_fdatasync_eio_until_cleared(self):
        self.faultfs_case("fdatasync EIO episode", FAULTFS_OPS="fdatasync", FAULTFS_ERRNO="EIO",
                          FAULTFS_FAIL_AFTER=1, FAULTFS_MODE="until-cleared")

    def test_05_main_db_file_only(self):
        # only soldr.db (checkpoints write there): commits to the WAL go on
        self.faultfs_case("checkpoint EIO episode", FAULTFS_MATCH="soldr.db",
                          FAULTFS_OPS="pwrite,fdatasync", FAULTFS_ERRNO="EIO",
                          FAULTFS_FAIL_AFTER=1, FAULTFS_MODE="until-cleared",
                          expect_fallback=False, body_size=(2000, 6000))

    def test_06_stdout_fails_too(self):
        self.faultfs_case("EIO + stdout /dev/full", FAULTFS_OPS="pwrite,fdatasync",
                          FAULTFS_ERRNO="EIO", FAULTFS_FAIL_AFTER=1,
                          FAULTFS_MODE="until-cleared", stdout_fails=True)

    def test_07_kill9_while_fsync_fails(self):
        self.faultfs_case("kill -9 in fsync EIO", FAULTFS_OPS="fdatasync", FAULTFS_ERRNO="EIO",
                          FAULTFS_FAIL_AFTER=1, FAULTFS_MODE="until-cleared",
                          kill_in_fault=True)

    # -- the environment -------------------------------------------------------

    def test_08_database_immutable(self):
        probe_dir = make_tempdir(self, "soldr-rel-chattr-")
        if not chattr_works(probe_dir):
            self.skipTest("chattr +i not supported here")
        files = ["soldr.db", "soldr.db-wal"]

        def on(srv, ctl):
            paths = [os.path.join(srv.data_dir, f) for f in files]
            subprocess.run(["chattr", "+i"] + paths, check=True)
            self.addCleanup(subprocess.run, ["chattr", "-i"] + paths)
            return paths

        def off(srv, ctl, paths):
            subprocess.run(["chattr", "-i"] + paths, check=True)
        self.run_case("chattr +i db and wal", on=on, off=off)

    def test_09_exclusive_lock_by_another_process(self):
        def on(srv, ctl):
            p = subprocess.Popen([sys.executable, "-c", LOCKER, srv.db_path],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self.addCleanup(p.kill)
            self.assertEqual(p.stdout.readline().strip(), b"locked")
            return p

        def off(srv, ctl, p):
            p.stdin.close()
            self.assertEqual(p.wait(10), 0)
            p.stdout.close()
        self.run_case("BEGIN EXCLUSIVE elsewhere", on=on, off=off)

    def test_10_filesystem_full(self):
        mnt = tempfile.mkdtemp(prefix="soldr-rel-tmpfs-")
        self.addCleanup(os.rmdir, mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % p.stderr.decode(errors="replace"))
        self.addCleanup(lambda: subprocess.run(["umount", mnt]).returncode == 0
                        or subprocess.run(["umount", "-l", mnt]))
        data = os.path.join(mnt, "data")

        def on(srv, ctl):
            filler = os.path.join(mnt, "filler")
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                for size in (1 << 20, 65536, 4096, 512):
                    try:
                        while True:
                            os.write(fd, b"\0" * size)
                    except OSError:
                        pass
            finally:
                os.close(fd)
            return filler

        def off(srv, ctl, filler):
            os.unlink(filler)
        self.run_case("filesystem full (tmpfs)", on=on, off=off, data_dir=data,
                      body_size=(1000, 4000))

    # -- the processor after a transient fault ---------------------------------

    def test_11_outcome_recorded_after_a_transient_fault(self):
        dest = DestServer(self, default=Reply(200, body=b"ok", delay=1.0))
        srv = Daemon(self, "--busy-timeout", "200ms")
        webhook_add(self, srv.data_dir, "slow", dest.url("/hook"))
        srv.start()
        with HTTPConn(srv.port, timeout=10) as c:
            c.send(Req("POST", "/one", [("Host", srv.host("slow"))], b"x").raw)
            rid = c.read_response().json()["id"]
        self.assertTrue(wait_until(lambda: dest.inflight > 0, 5, 0.01))
        p = subprocess.Popen([sys.executable, "-c", LOCKER, srv.db_path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(p.kill)
        self.assertEqual(p.stdout.readline().strip(), b"locked")
        time.sleep(1.5)  # the destination answers 200 meanwhile; recording it fails
        p.stdin.close()
        p.wait(10)
        p.stdout.close()

        def state():
            c = connect_ro(srv.db_path)
            try:
                return c.execute("SELECT state FROM requests WHERE id = ?", (rid,)).fetchone()[0]
            finally:
                c.close()
        delivered = wait_until(lambda: state() == "delivered", 5, 0.1)
        st = state()
        self.assertEqual(srv.term(), 0)
        srv.start()
        wait_until(lambda: state() == "delivered", 10, 0.1)
        time.sleep(0.3)
        srv.term()
        n = dest.id_counts().get(rid, 0)
        note("outcome in a failed commit: state 5 s after the fault %r; destination saw the "
             "request %d times across one restart" % (st, n))
        self.assertTrue(delivered, "still %r 5 s after the fault cleared" % st)
        self.assertEqual(n, 1, "delivered again after the restart")


if __name__ == "__main__":
    unittest.main()
