"""End-to-end: the systemd units and the example EnvironmentFile as
installed by `cmake --install` (SOLDR_BUILD_DIR): systemd-analyze verify
accepts them, the sandbox scores well, and the example lists every setting
with the default the binary uses."""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from soldr_harness import SoldrTestCase, make_tempdir, require_binary, run_soldr  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UNITS = ("soldr.service", "soldr.socket", "soldr-mgmt.socket")
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 best, 10 worst; "OK" is below 3


def help_settings():
    """{SOLDR_X: default} from `soldr serve --help`."""
    p = run_soldr("serve", "--help")
    return dict(re.findall(r"^  (SOLDR_[A-Z_]+)\s+--\S+\s+\[(.*)\]$", p.stdout.decode(), re.M))


class EnvExample(SoldrTestCase):

    def test_env_example_lists_every_setting_with_its_default(self):
        require_binary(self)
        p = run_soldr("serve", "--env-example")
        self.assertEqual(p.returncode, 0, p.stderr)
        text = p.stdout.decode()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        self.assertTrue(all(ln.startswith("#") for ln in lines),
                        "every line must be a comment: the example changes nothing as is")
        example = dict(re.findall(r"^#(SOLDR_[A-Z_]+)=(.*)$", text, re.M))
        settings = help_settings()
        self.assertGreater(len(settings), 10)
        self.assertEqual(example, settings)


class Units(SoldrTestCase):

    def install(self):
        build = os.environ.get("SOLDR_BUILD_DIR")
        cmake = os.environ.get("CMAKE") or shutil.which("cmake")
        if not build or not cmake:
            self.skipTest("SOLDR_BUILD_DIR / cmake not set (run through ctest)")
        prefix = make_tempdir(self, "soldr-install-")
        p = subprocess.run([cmake, "--install", build, "--prefix", prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        return prefix

    def test_install_layout_and_prefix(self):
        prefix = self.install()
        for path in ["bin/soldr", "share/doc/soldr/README.md",
                     "share/doc/soldr/soldr.env.example"] + \
                ["lib/systemd/system/" + u for u in UNITS]:
            self.assertTrue(os.path.isfile(os.path.join(prefix, path)), path)
        with open(os.path.join(prefix, "lib/systemd/system/soldr.service")) as f:
            service = f.read()
        self.assertIn("ExecStart=%s/bin/soldr serve\n" % prefix, service)
        for d in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "Requires=soldr.socket",
                  "DynamicUser=yes", "StateDirectory=soldr"):
            self.assertIn(d, service)
        with open(os.path.join(prefix, "lib/systemd/system/soldr.socket")) as f:
            socket_unit = f.read()
        self.assertIn("FileDescriptorName=ingest", socket_unit)
        # the socket listens where soldr would without it
        self.assertIn("ListenStream=%s\n" % help_settings()["SOLDR_LISTEN"], socket_unit)
        # TimeoutStopSec covers the grace for deliveries plus a request being read
        grace = int(help_settings()["SOLDR_SHUTDOWN_GRACE"].rstrip("s"))
        read = int(help_settings()["SOLDR_READ_TIMEOUT"].rstrip("s"))
        stop = int(re.search(r"^TimeoutStopSec=(\d+)s$", service, re.M).group(1))
        self.assertGreater(stop, grace + read)

    def test_systemd_analyze_verify_and_security(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze not installed (Debian package: systemd)")
        units = os.path.join(self.install(), "lib/systemd/system")
        p = subprocess.run([tool, "verify", "--man=no"] + [os.path.join(units, u) for u in UNITS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual((p.returncode, p.stdout.decode()), (0, ""))
        p = subprocess.run([tool, "security", "--offline=yes", os.path.join(units, "soldr.service")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.decode("utf-8", "replace")
        if "offline" in out and "Unknown option" in out:
            self.skipTest("this systemd-analyze has no --offline")
        m = re.search(r"Overall exposure level for soldr.service: ([\d.]+)", out)
        self.assertIsNotNone(m, out[-2000:])
        sys.stderr.write("\n[units] systemd-analyze security --offline: %s\n" % m.group(1))
        self.assertEqual(p.returncode, 0, out[-3000:])
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE)


if __name__ == "__main__":
    unittest.main()
