"""`soldr ui`: the management UI in a process of its own, forwarding its API
calls to the management API of a real `soldr serve` over real TLS."""
import json
import os
import signal
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from soldr_harness import SOLDR_BIN, Soldr, free_port, make_tempdir

SECRET = "s" * 20 + "-ui-proxy-test-secret-0123456789"


class UIProxy(unittest.TestCase):
    def setUp(self):
        self.tmp = make_tempdir(self)
        self.secret_file = os.path.join(self.tmp, "secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        self.mgmt_port = free_port()
        self.soldr = Soldr(self, "--mgmt-listen", "127.0.0.1:%d" % self.mgmt_port,
                           "--mgmt-secret-file", self.secret_file).start()
        self.wait_port(self.mgmt_port)
        self.api = "https://127.0.0.1:%d" % self.mgmt_port
        self.ca = os.path.join(self.soldr.data_dir, "mgmt-cert.pem")

    def wait_port(self, port, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.fail("port %d never accepted" % port)

    def start_ui(self, *args):
        port = free_port()
        log = open(os.path.join(self.tmp, "ui-%d.log" % port), "w+")
        proc = subprocess.Popen([SOLDR_BIN, "ui", "--api", self.api, "--api-ca", self.ca,
                                 "--listen", "127.0.0.1:%d" % port] + list(args),
                                stdout=log, stderr=log)

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(10), 0, "soldr ui did not exit 0 on SIGTERM")
            log.close()
        self.addCleanup(stop)
        self.wait_port(port)
        return "http://127.0.0.1:%d" % port, log

    def call(self, base, path, body=None, method=None, auth=None):
        req = urllib.request.Request(base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", "Bearer " + auth)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def test_proxy_adds_the_secret_and_serves_the_ui(self):
        base, log = self.start_ui("--secret-file", self.secret_file)
        status, headers, body = self.call(base, "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers["Content-Type"])
        self.assertIn(b"<title>soldr</title>", body)
        status, headers, _ = self.call(base, "/app.js")
        self.assertEqual(status, 200)
        self.assertIn("javascript", headers["Content-Type"])
        # No Authorization from the browser: the proxy adds the secret.
        status, _, body = self.call(base, "/api/v1/webhooks",
                                    {"id": "via-ui", "destination": "http://127.0.0.1:9/x"})
        self.assertEqual(status, 201, body)
        # ...and the webhook really is in soldr's database.
        out = subprocess.run([SOLDR_BIN, "webhook", "show", "via-ui", "--data-dir",
                              self.soldr.data_dir], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("destination: http://127.0.0.1:9/x", out.stdout)
        # API errors come through unchanged.
        status, _, body = self.call(base, "/api/v1/webhooks/no-such-hook")
        self.assertEqual(status, 404)
        status, _, _ = self.call(base, "/../../etc/passwd")
        self.assertEqual(status, 404)
        log.seek(0)
        text = log.read()
        self.assertIn("keep it on loopback", text)
        self.assertNotIn(SECRET, text, "the secret must never be logged")

    def test_without_secret_file_the_typed_secret_is_passed_through(self):
        base, _ = self.start_ui()
        status, _, _ = self.call(base, "/api/v1/webhooks")
        self.assertEqual(status, 401)
        status, _, _ = self.call(base, "/api/v1/webhooks", auth="wrong" * 8)
        self.assertEqual(status, 401)
        status, _, body = self.call(base, "/api/v1/webhooks", auth=SECRET)
        self.assertEqual(status, 200, body)
        self.assertIn("webhooks", json.loads(body))

    def test_unreachable_api_is_a_clear_502(self):
        port = free_port()
        proc = subprocess.run([SOLDR_BIN, "ui", "--api"], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)
        self.api = "https://127.0.0.1:%d" % port  # nothing listens there
        base, _ = self.start_ui()
        status, _, body = self.call(base, "/api/v1/webhooks", auth=SECRET)
        self.assertEqual(status, 502)
        self.assertIn(b"cannot be reached", body)


if __name__ == "__main__":
    unittest.main()
