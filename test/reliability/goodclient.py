"""A well-behaved webhook sender, run as a separate process by test_hostile.py
(so that the hostile threads of the test process do not skew its timings
through the GIL).

    python3 goodclient.py PORT HOST INTERVAL_MS OUT.json

Sends one POST every INTERVAL_MS on a keep-alive connection (a new one if
soldr closes it) until stdin is closed, then writes
{"lat_ms": [...], "statuses": {...}, "errors": [...]} to OUT.json.
"""

import collections
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

from soldr_harness import HTTPConn, Req  # noqa: E402


def main():
    port, host, interval, out = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) / 1000, sys.argv[4]
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()
    threading.Thread(target=watch_stdin, daemon=True).start()

    lat, errors, statuses = [], [], collections.Counter()
    conn = None
    n = 0
    next_t = time.monotonic()
    while not stop.is_set():
        n += 1
        raw = Req("POST", "/good/%d" % n, [("Host", host)], b'{"good":%d}' % n).raw
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = HTTPConn(port, timeout=10)
            conn.send(raw)
            r = conn.read_response()
            lat.append((time.monotonic() - t0) * 1000)
            statuses[r.status] += 1
            if (r.header("connection") or "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, socket.timeout, Exception) as e:  # noqa: BLE001 - all reported
            errors.append("%d: %r after %.0f ms" % (n, e, (time.monotonic() - t0) * 1000))
            if conn is not None:
                conn.close()
            conn = None
        next_t += interval
        d = next_t - time.monotonic()
        if d > 0:
            stop.wait(d)
        else:
            next_t = time.monotonic()
    with open(out, "w") as f:
        json.dump({"lat_ms": lat, "statuses": statuses, "errors": errors}, f)


if __name__ == "__main__":
    main()
