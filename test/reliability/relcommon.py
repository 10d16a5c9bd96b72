"""Shared pieces of the soldr reliability suites (Python standard library only).

The e2e harness (test/e2e/soldr_harness.py, sinks.py) is imported, not copied:
this module adds what the reliability suites need on top of it.

- Daemon: one `soldr serve` on a FIXED port that can be killed and started
  again on the same data directory, each run with its own stdout file (the
  stdout fallback records of that run) and optional extra environment
  (LD_PRELOAD=faultfs). Senders see "connection refused" while it is down,
  as they would behind a plain (non-activated) listener.
- LoadGen: webhooks from several threads (keep-alive and fresh connections),
  each attempt with a unique payload id in its target and body; it records
  every outcome with its time. An attempt that got no answer is NOT sent
  again under the same id: every payload id is one element of the set test.
- helpers to read the database, replay stdout files and check the ack rule.
"""

import collections
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
if E2E not in sys.path:
    sys.path.insert(0, E2E)

from soldr_harness import (  # noqa: E402,F401
    DOMAIN, SOLDR_BIN, START_TIMEOUT, STOP_TIMEOUT, ConnectionClosed, HTTPConn, Req,
    clean_env, free_port, make_tempdir, parse_records, record_body, require_binary, run_soldr)

FAULTFS_LIB = os.environ.get("FAULTFS_LIB", "")


def _sanitized(path):
    """True when the soldr binary is built with a sanitizer (CI's ASan/TSan
    stages): memory figures are then the sanitizer's, not soldr's."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data


SANITIZED = _sanitized(os.environ.get("SOLDR_BIN") or "")

SEED = int(os.environ.get("RELIABILITY_SEED") or int(time.time() * 1000) % 1000000)
STRICT = bool(os.environ.get("RELIABILITY_STRICT"))


def known_bug(reason):
    """Marks a test that documents a daemon bug: an expected failure (so the
    suite stays green while the bug is there, and reports "unexpected
    success" once it is fixed: then drop the marker). RELIABILITY_STRICT=1
    makes it a plain test."""
    def deco(fn):
        fn.__doc__ = "KNOWN BUG: " + reason
        return fn if STRICT else unittest.expectedFailure(fn)
    return deco


def note(msg):
    """A line on stderr (ctest -V / --output-on-failure shows it)."""
    sys.stderr.write("[reliability] %s\n" % msg)
    sys.stderr.flush()


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


def env_float(name, default):
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


# ---------------------------------------------------------------------------
# the daemon
# ---------------------------------------------------------------------------


class Daemon:
    """`soldr serve` on one port and one data dir, restartable.

    Each start() writes stdout to <tmp>/stdout.<n>.log and stderr to
    <tmp>/stderr.<n>.log (n = run number from 1)."""

    def __init__(self, tc, *args, data_dir=None, port=None, env=None, tmp=None,
                 preexec_fn=None):
        require_binary(tc)
        self.tc = tc
        self.args = [str(a) for a in args]
        self.tmp = tmp or make_tempdir(tc, "soldr-rel-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.db_path = os.path.join(self.data_dir, "soldr.db")
        self.port = port or free_port()
        self.env = dict(env or {})
        self.preexec_fn = preexec_fn
        self.proc = None
        self.runs = 0
        self.stdout_paths = []
        self.stderr_paths = []
        self.stdout_override = None  # e.g. "/dev/full" for the next start()
        tc.addCleanup(self._cleanup)

    def host(self, label):
        return "%s.%s:%d" % (label, DOMAIN, self.port)

    @property
    def pid(self):
        return self.proc.pid

    def command(self):
        return [SOLDR_BIN, "serve", "--data-dir", self.data_dir,
                "--listen", "127.0.0.1:%d" % self.port, "--domain", DOMAIN] + self.args

    def start(self, wait=True, env=None):
        self.runs += 1
        out_path = self.stdout_override or os.path.join(self.tmp, "stdout.%d.log" % self.runs)
        err_path = os.path.join(self.tmp, "stderr.%d.log" % self.runs)
        if self.stdout_override is None:
            self.stdout_paths.append(out_path)
        self.stderr_paths.append(err_path)
        e = dict(self.env)
        e.update(env or {})
        for attempt in range(50):
            with open(out_path, "ab") as out, open(err_path, "ab") as err:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, env=clean_env(e),
                                             cwd=self.tmp, preexec_fn=self.preexec_fn)
            if not wait:
                return self
            ok = self.wait_ready()
            if ok:
                return self
            if self.proc.poll() is not None and re.search(
                    r"in use|EADDRINUSE", self.stderr_text(err_path), re.I):
                time.sleep(0.1)  # the old socket is still going away
                continue
            break
        rc = self.proc.poll()
        self.kill9()
        self.tc.fail("soldr (run %d) did not accept on port %d (exit status %s)\n%s"
                     % (self.runs, self.port, rc, self.stderr_text(err_path)[-6000:]))

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.01)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def term(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait: the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def _cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.term()

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def stderr_text(self, path=None):
        paths = [path] if path else self.stderr_paths
        out = []
        for p in paths:
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(out)

    def records(self):
        """{id: record} over every run's stdout file."""
        recs = {}
        for p in self.stdout_paths:
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for r in parse_records(data):
                recs[r["id"]] = r
        return recs


def webhook_add(tc, data_dir, label, url, *args):
    p = run_soldr("webhook", "add", label, url, *args, "--data-dir", data_dir, timeout=30)
    tc.assertEqual(p.returncode, 0, "soldr webhook add failed: %s%s"
                   % (p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")))


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------


class Outcome:
    __slots__ = ("pid", "t0", "t1", "status", "sid", "error", "retry_after")

    def __init__(self, pid, t0):
        self.pid = pid
        self.t0 = t0
        self.t1 = None
        self.status = None   # int, or None when there was no answer
        self.sid = None      # soldr's id when 200
        self.error = None    # "refused", "reset", "timeout", ... when no answer
        self.retry_after = None


class LoadGen:
    """Webhooks from `keepalive` + `fresh` threads to `port`, each at most
    `rate` requests per second (0: as fast as it goes). Payload id
    "<run>-<thread>-<n>" is in the target (/p/<id>) and the body."""

    def __init__(self, port, label="rel", keepalive=3, fresh=1, rate=0, run="r",
                 body_size=(64, 512), timeout=20.0, seed=None):
        self.port = port
        self.host = "%s.%s:%d" % (label, DOMAIN, port)
        self.kinds = [True] * keepalive + [False] * fresh
        self.rate = rate
        self.run = run
        self.body_size = body_size
        self.timeout = timeout
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.outcomes = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._worker, args=(k, ka, self.rng.random()),
                                         daemon=True) for k, ka in enumerate(self.kinds)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=30):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout)
        if any(t.is_alive() for t in self.threads):
            raise AssertionError("load generator threads did not stop")

    @staticmethod
    def body_for(pid, size, salt):
        pad = ("%08x" % salt) * (size // 8 + 1)
        return ('{"pid":"%s","pad":"%s"}' % (pid, pad[:size])).encode()

    def _worker(self, k, keepalive, salt):
        rng = random.Random(salt)
        conn = None
        i = 0
        period = 1.0 / self.rate if self.rate else 0.0
        next_t = time.monotonic()
        while not self.stopping.is_set():
            if period:
                now = time.monotonic()
                if now < next_t:
                    time.sleep(next_t - now)
                next_t = max(next_t + period, time.monotonic() - 1.0)
            pid = "%s-%d-%d" % (self.run, k, i)
            i += 1
            body = self.body_for(pid, rng.randint(*self.body_size), rng.getrandbits(32))
            raw = Req("POST", "/p/" + pid, [("Host", self.host),
                                            ("Content-Type", "application/json")], body).raw
            o = Outcome(pid, time.monotonic())
            try:
                if conn is None:
                    conn = HTTPConn(self.port, timeout=self.timeout)
                conn.send(raw)
                resp = conn.read_response()
                o.status = resp.status
                if resp.status == 200:
                    o.sid = resp.json()["id"]
                o.retry_after = resp.header("retry-after")
                if not keepalive or (resp.header("connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except ConnectionRefusedError:
                o.error = "refused"
                conn = None
                time.sleep(0.005)
            except (ConnectionClosed, ConnectionResetError, ConnectionAbortedError,
                    BrokenPipeError):
                o.error = "reset"
                if conn is not None:
                    conn.close()
                conn = None
            except (socket.timeout, TimeoutError):
                o.error = "timeout"
                conn.close()
                conn = None
            except OSError as e:
                o.error = "oserror: %s" % e
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.005)
            o.t1 = time.monotonic()
            with self.lock:
                self.outcomes.append(o)
        if conn is not None:
            conn.close()

    # -- results -------------------------------------------------------------

    def snapshot(self):
        with self.lock:
            return list(self.outcomes)

    def acked(self):
        """{payload id: soldr id} of every attempt answered 200."""
        return {o.pid: o.sid for o in self.snapshot() if o.status == 200}

    def acked_count(self):
        with self.lock:
            return sum(1 for o in self.outcomes if o.status == 200)

    def wait_acks(self, more, timeout=10.0):
        goal = self.acked_count() + more
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.acked_count() >= goal:
                return True
            time.sleep(0.01)
        return False

    def summary(self, since=None, until=None):
        outs = [o for o in self.snapshot()
                if (since is None or o.t0 >= since) and (until is None or o.t0 < until)]
        c = collections.Counter(o.status if o.status is not None else o.error for o in outs)
        return dict(c)


# ---------------------------------------------------------------------------
# the database and the ack rule
# ---------------------------------------------------------------------------


def connect_ro(db_path):
    conn = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=10)
    return conn


def stored_bodies(db_path):
    """{soldr id: body bytes} of every request in the database."""
    conn = connect_ro(db_path)
    try:
        return {rid: bytes(body) for rid, body in conn.execute(
            "SELECT r.id, b.body FROM requests r JOIN request_bodies b USING (seq)")}
    finally:
        conn.close()


def states(db_path):
    conn = connect_ro(db_path)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM requests GROUP BY state"))
    finally:
        conn.close()


def replay(data_dir, path):
    """Runs `soldr replay path`: (restored, already present, malformed, CompletedProcess)."""
    p = run_soldr("replay", path, "--data-dir", data_dir, timeout=120)
    m = re.search(rb"restored (\d+), already present (\d+), malformed (\d+)", p.stdout)
    if not m:
        return None, None, None, p
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), p


def pid_of_body(body):
    try:
        return json.loads(body)["pid"]
    except (ValueError, KeyError, TypeError):
        return None


class AckCheck:
    """The ack rule over a finished run: every payload acknowledged (200 + id)
    is in the database or in a stdout record, with its body intact."""

    def __init__(self, acked, bodies, records):
        self.acked = acked          # {pid: sid}
        self.bodies = bodies        # {sid: body} from the database
        self.records = records      # {sid: record} from stdout files
        self.in_db = {p for p, s in acked.items() if s in bodies}
        self.in_log = {p for p, s in acked.items() if s in records}
        self.lost = sorted(set(acked) - self.in_db - self.in_log)
        self.both = self.in_db & self.in_log
        self.corrupt = []
        for p, s in acked.items():
            if s in bodies and pid_of_body(bodies[s]) != p:
                self.corrupt.append((p, s, "db"))
            elif s not in bodies and s in records and pid_of_body(record_body(records[s])) != p:
                self.corrupt.append((p, s, "log"))
        # a payload stored under two soldr ids would be a duplicate ingest
        seen = collections.Counter(pid_of_body(b) for b in bodies.values())
        self.dup_payloads = sorted(p for p, n in seen.items() if p is not None and n > 1)

    def line(self):
        return ("%d acknowledged: %d in the database, %d only in stdout records, %d in both, "
                "%d lost, %d corrupt, %d payloads stored twice"
                % (len(self.acked), len(self.in_db), len(self.in_log - self.in_db),
                   len(self.both), len(self.lost), len(self.corrupt), len(self.dup_payloads)))
