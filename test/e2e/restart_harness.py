"""Socket activation and sd_notify for the e2e tests, without systemd.

The test plays the service manager: it owns the listening socket (bound once,
kept open across soldr processes, like soldr.socket), starts soldr with it as
fd 3 (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES), and listens on a
NOTIFY_SOCKET of its own for READY=1 / STOPPING=1 / STATUS= / WATCHDOG=1,
telling senders apart by the pid the kernel attaches (SO_PASSCRED).

LoadGen sends webhooks without pause from several threads (keep-alive and
fresh connections, a unique id per request in the target) and sorts every
outcome: acknowledged (200 + id), refused, answered non-2xx, unanswered
(connection closed or reset before the first byte of an answer: never
acknowledged, so it is sent again, as a webhook sender would).
"""

import collections
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from soldr_harness import (DOMAIN, SOLDR_BIN, START_TIMEOUT, STOP_TIMEOUT, ConnectionClosed,
                           HTTPConn, Req, clean_env, make_tempdir, require_binary)

# Runs in the child between fork and exec, so that LISTEN_PID is the pid soldr
# will have (exec keeps it): moves the passed sockets to fds 3, 4, ... (via
# fds >= 64, so that no move clobbers another) and execs argv.
_WRAPPER = r"""
import fcntl, os, sys
n = int(sys.argv[1])
src = [int(a) for a in sys.argv[2:2 + n]]
pid_offset = int(sys.argv[2 + n])
argv = sys.argv[3 + n:]
high = [fcntl.fcntl(f, fcntl.F_DUPFD, 64) for f in src]
for f in src:
    os.close(f)
for i, f in enumerate(high):
    os.dup2(f, 3 + i)
    os.close(f)
os.environ["LISTEN_PID"] = str(os.getpid() + pid_offset)
os.execv(argv[0], argv)
"""


class ListenSocket:
    """A listening TCP socket on 127.0.0.1 owned by the test (the part that
    soldr.socket plays under systemd)."""

    def __init__(self, tc, backlog=4096):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.fd = self.sock.fileno()
        tc.addCleanup(self.sock.close)


class Notify:
    """A NOTIFY_SOCKET: collects (pid, {field: value}, monotonic time)."""

    def __init__(self, tc, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = "soldr-e2e-notify-%d-%d" % (os.getpid(), id(self))
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(make_tempdir(tc, "soldr-notify-"), "notify")
            self.sock.bind(self.address)
        self.sock.settimeout(0.2)
        self.messages = []
        self.cond = threading.Condition()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        tc.addCleanup(self.close)

    def _run(self):
        ucred = struct.calcsize("3i")
        while self.running:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:ucred])[0]
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.cond:
                self.messages.append((pid, fields, time.monotonic()))
                self.cond.notify_all()

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()

    def of(self, pid, key=None):
        """Messages from pid (having field `key`, if given)."""
        with self.cond:
            return [(f, t) for p, f, t in self.messages if p == pid and (key is None or key in f)]

    def wait(self, pid, key, value=None, timeout=START_TIMEOUT, proc=None):
        """Waits for a message from pid with key (=value); False on timeout or
        when proc exits first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for p, f, _ in self.messages:
                    if p == pid and key in f and (value is None or f[key] == value):
                        return True
                left = deadline - time.monotonic()
                if left <= 0 or (proc is not None and proc.poll() is not None):
                    return False
                self.cond.wait(min(left, 0.1))


class ActivatedSoldr:
    """`soldr serve` started the way soldr.service starts it: listening
    sockets passed as fds 3.. (names in LISTEN_FDNAMES) and a NOTIFY_SOCKET.
    start() waits for READY=1. The same object can be started again (same
    sockets, same data directory) after stop()/kill()."""

    def __init__(self, tc, sockets, notify, names=("ingest",), data_dir=None, env=None,
                 args=(), listen=None, pid_offset=0):
        require_binary(tc)
        self.tc = tc
        self.sockets = list(sockets)
        self.notify = notify
        self.names = names
        self.tmp = make_tempdir(tc)
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.db_path = os.path.join(self.data_dir, "soldr.db")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.stdout_path = os.path.join(self.tmp, "stdout.log")
        self.env = dict(env or {})
        self.args = [str(a) for a in args]
        # By default SOLDR_LISTEN names the passed socket's own address: if
        # soldr bound it instead of using fd 3, it would fail (address in use).
        self.listen = listen or "127.0.0.1:%d" % self.sockets[0].port
        self.pid_offset = pid_offset
        self.proc = None
        self.starts = 0
        tc.addCleanup(self._cleanup)

    @property
    def port(self):
        return self.sockets[0].port

    def host(self, label):
        return "%s.%s:%d" % (label, DOMAIN, self.port)

    def start(self, wait_ready=True):
        fds = [s.fd for s in self.sockets]
        env = dict(self.env)
        env["LISTEN_FDS"] = str(len(fds))
        if self.names is not None:
            env["LISTEN_FDNAMES"] = ":".join(self.names)
        if self.notify is not None:
            env["NOTIFY_SOCKET"] = self.notify.address
        cmd = [sys.executable, "-I", "-S", "-c", _WRAPPER, str(len(fds)), *map(str, fds),
               str(self.pid_offset), os.path.abspath(SOLDR_BIN), "serve", "--data-dir", self.data_dir,
               "--listen", self.listen, "--domain", DOMAIN, *self.args]
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=clean_env(env), pass_fds=fds, cwd=self.tmp)
        self.starts += 1
        if wait_ready and not self.wait_ready():
            rc = self.proc.poll()
            self._kill()
            self.tc.fail("soldr (start %d) sent no READY=1 within %.0f s (exit status %s)\n"
                         "--- stderr ---\n%s" % (self.starts, START_TIMEOUT, rc,
                                                 self.stderr_text()[-6000:]))
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        return self.notify.wait(self.proc.pid, "READY", "1", timeout, self.proc)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits for the exit; returns the exit status."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self.tc.fail("soldr did not exit within %.0f s of signal %d" % (timeout, sig))

    def kill(self):
        self.proc.kill()
        return self.proc.wait()

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class LoadGen:
    """Webhooks without pause from `keepalive` threads that reuse their
    connection and `fresh` threads that open one per request. Request k-i
    goes to /r/<run>-k-i with that id as its body too; an unanswered request
    is sent again (same id) until it gets an answer."""

    def __init__(self, port, label="restart", keepalive=3, fresh=3, timeout=20.0, run="x"):
        self.port = port
        self.host = "%s.%s:%d" % (label, DOMAIN, port)
        self.timeout = timeout
        self.run = run
        self.kinds = [True] * keepalive + [False] * fresh
        self.acked = {}  # request id (ours) -> soldr's id
        self.counts = collections.Counter()
        self.statuses = collections.Counter()
        self.errors = []
        self.max_wait = 0.0  # longest time from sending to the answer
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._worker, args=(k, ka), daemon=True)
                        for k, ka in enumerate(self.kinds)]

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

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def _count(self, what, n=1):
        with self.lock:
            self.counts[what] += n

    def _worker(self, k, keepalive):
        conn = None
        i = 0
        while not self.stopping.is_set():
            rid = "%s-%d-%d" % (self.run, k, i)
            req = Req("POST", "/r/" + rid, [("Host", self.host),
                                            ("Content-Type", "text/plain")], rid).raw
            while True:  # until this request is answered (or we are told to stop)
                if conn is None:
                    try:
                        conn = HTTPConn(self.port, timeout=self.timeout)
                        self._count("connections")
                    except ConnectionRefusedError:
                        self._count("refused")
                        if self.stopping.is_set():
                            break
                        time.sleep(0.01)
                        continue
                    except OSError as e:
                        self._count("connect_errors")
                        self.errors.append("connect: %r" % e)
                        if self.stopping.is_set():
                            break
                        time.sleep(0.01)
                        continue
                t0 = time.monotonic()
                try:
                    self._count("sent")
                    conn.send(req)
                    resp = conn.read_response()
                except (ConnectionClosed, ConnectionResetError, ConnectionAbortedError,
                        BrokenPipeError) as e:
                    got_bytes = bool(conn.buf)
                    conn.close()
                    conn = None
                    if got_bytes:
                        self._count("truncated")
                        self.errors.append("%s: answer cut short: %r" % (rid, e))
                    else:
                        self._count("unanswered")
                    if self.stopping.is_set():
                        break
                    continue
                except (socket.timeout, TimeoutError):
                    conn.close()
                    conn = None
                    self._count("timeouts")
                    self.errors.append("%s: no answer within %.0f s" % (rid, self.timeout))
                    if self.stopping.is_set():
                        break
                    continue
                waited = time.monotonic() - t0
                with self.lock:
                    self.max_wait = max(self.max_wait, waited)
                    self.statuses[resp.status] += 1
                    if resp.status == 200:
                        self.acked[rid] = resp.json()["id"]
                    else:
                        self.counts["non2xx"] += 1
                        self.errors.append("%s: %r" % (rid, resp))
                if not keepalive or (resp.header("connection") or "").lower() == "close":
                    conn.close()
                    conn = None
                break
            i += 1
        if conn is not None:
            conn.close()

    def summary(self):
        c = self.counts
        return ("%d acknowledged, %d sent (%d connections), %d refused, %d non-2xx, "
                "%d unanswered then re-sent, %d cut short, %d timeouts, longest wait %.0f ms"
                % (len(self.acked), c["sent"], c["connections"], c["refused"], c["non2xx"],
                   c["unanswered"], c["truncated"], c["timeouts"], self.max_wait * 1000))
