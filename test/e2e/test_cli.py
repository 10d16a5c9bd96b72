"""End-to-end: the soldr command line (help, version, config errors, webhooks)."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from soldr_harness import (  # noqa: E402
    Soldr, SoldrTestCase, fetch_request, free_port, make_tempdir, open_db_ro,
    require_binary, run_soldr)


def out(p):
    return p.stdout.decode("utf-8", "replace")


def err(p):
    return p.stderr.decode("utf-8", "replace")


class HelpAndFlags(SoldrTestCase):

    def setUp(self):
        require_binary(self)
        self.tmp = make_tempdir(self)

    def test_version(self):
        p = run_soldr("--version")
        self.assertEqual(p.returncode, 0, err(p))
        self.assertRegex(out(p), r"\d+\.\d+\.\d+")

    def test_help_names_the_subcommands(self):
        p = run_soldr("--help")
        self.assertEqual(p.returncode, 0, err(p))
        text = out(p)
        for word in ("serve", "replay", "webhook"):
            self.assertIn(word, text)

    def test_serve_help_lists_variables_with_defaults(self):
        p = run_soldr("serve", "--help")
        self.assertEqual(p.returncode, 0, err(p))
        lines = out(p).splitlines()
        expected = {
            "SOLDR_DATA_DIR": "./soldr-data",
            "SOLDR_LISTEN": "127.0.0.1:8080",
            "SOLDR_DOMAIN": "wh.localhost",
            "SOLDR_DURABILITY": "full",
            "SOLDR_MAX_BODY": "1MiB",
            "SOLDR_MAX_HEADER_SIZE": "32KiB",
            "SOLDR_READ_TIMEOUT": "30s",
            "SOLDR_BUSY_TIMEOUT": "5s",
        }
        for var, default in expected.items():
            hit = [ln for ln in lines if re.search(r"\b%s\b" % var, ln)]
            self.assertTrue(hit, "%s missing from `soldr serve --help`" % var)
            self.assertTrue(any(default in ln for ln in hit),
                            "%s listed without its default %r: %r" % (var, default, hit))
        for flag in ("--data-dir", "--listen", "--domain", "--durability", "--max-body",
                     "--busy-timeout", "--read-timeout"):
            self.assertIn(flag, out(p))

    def serve_must_refuse(self, *args, env=None, mention):
        port = free_port()
        try:
            p = run_soldr("serve", "--data-dir", os.path.join(self.tmp, "d"),
                          "--listen", "127.0.0.1:%d" % port, *args, env=env, timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("soldr serve %s started instead of refusing" % " ".join(args))
        self.assertNotEqual(p.returncode, 0, "soldr serve %s exited 0" % " ".join(args))
        self.assertIn(mention, err(p), "the message should name %s" % mention)

    def test_bad_flag_values_are_refused(self):
        self.serve_must_refuse("--max-body", "abc", mention="--max-body")
        self.serve_must_refuse("--max-body=12xy", mention="--max-body")
        self.serve_must_refuse("--read-timeout", "soon", mention="--read-timeout")
        self.serve_must_refuse("--busy-timeout", "-1s", mention="--busy-timeout")
        self.serve_must_refuse("--durability", "sometimes", mention="--durability")
        self.serve_must_refuse("--max-connections", "many", mention="--max-connections")

    def test_bad_env_value_is_refused(self):
        self.serve_must_refuse(env={"SOLDR_MAX_BODY": "abc"}, mention="SOLDR_MAX_BODY")
        self.serve_must_refuse(env={"SOLDR_DURABILITY": "maybe"}, mention="SOLDR_DURABILITY")

    def test_flag_without_value_and_unknown_things(self):
        p = run_soldr("serve", "--data-dir", self.tmp, "--max-body", timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--max-body", err(p))
        for args in (["serve", "--data-dir", self.tmp, "--no-such-flag"], ["frobnicate"],
                     ["webhook", "frobnicate", "--data-dir", self.tmp], []):
            p = run_soldr(*args, timeout=10)
            self.assertNotEqual(p.returncode, 0, "soldr %s exited 0" % " ".join(args))
            self.assertTrue(err(p).strip(), "soldr %s: no message on stderr" % " ".join(args))

    def test_serve_configured_by_environment(self):
        srv = Soldr(self, use_flags=False, env={"SOLDR_MAX_BODY": "100"}).start()
        resp, _ = srv.send("envtest", b"configured by env")
        rid = self.assertAck(resp)
        self.assertEqual(fetch_request(srv.db(), rid)["body"], b"configured by env")
        self.assertEqual(srv.send("envtest", b"x" * 101)[0].status, 413)

    def test_flag_overrides_environment(self):
        srv = Soldr(self, "--max-body", "200", env={"SOLDR_MAX_BODY": "100"}).start()
        self.assertAck(srv.send("prio", b"x" * 150)[0])
        self.assertEqual(srv.send("prio", b"x" * 201)[0].status, 413)


class Webhooks(SoldrTestCase):

    def setUp(self):
        require_binary(self)
        self.data = os.path.join(make_tempdir(self), "data")
        os.makedirs(self.data)

    def wh(self, *args):
        return run_soldr("webhook", *args, "--data-dir", self.data, timeout=20)

    def ok(self, *args):
        p = self.wh(*args)
        self.assertEqual(p.returncode, 0, "soldr webhook %s: %s" % (" ".join(args), err(p)))
        return out(p)

    def fails(self, *args):
        p = self.wh(*args)
        self.assertNotEqual(p.returncode, 0, "soldr webhook %s should fail" % " ".join(args))
        self.assertTrue(err(p).strip(), "soldr webhook %s: no message on stderr"
                        % " ".join(args))
        return err(p)

    def db_hooks(self):
        db = open_db_ro(os.path.join(self.data, "soldr.db"))
        try:
            return {r[0].decode(): (r[1].decode(), r[2], r[3]) for r in db.execute(
                "SELECT id, destination, active, max_attempts FROM webhooks")}
        finally:
            db.close()

    def show(self, label):
        text = self.ok("show", label)
        kv = {}
        for ln in text.splitlines():
            k, sep, v = ln.partition(":")
            if sep:
                kv[k.strip().lower()] = v.strip()
        self.assertIn(label, text)
        dest = [v for k, v in kv.items() if "dest" in k]
        att = [v for k, v in kv.items() if "attempt" in k]
        act = [v for k, v in kv.items() if "active" in k and "attempt" not in k]
        self.assertEqual(len(dest), 1, text)
        self.assertEqual(len(att), 1, text)
        self.assertEqual(len(act), 1, text)
        truthy = act[0].lower() in ("yes", "true", "1", "active", "on")
        falsy = act[0].lower() in ("no", "false", "0", "inactive", "off")
        self.assertTrue(truthy or falsy, "active: %r" % act[0])
        return dest[0], int(att[0]), truthy

    def test_round_trip(self):
        self.assertEqual(self.ok("list").strip(), "")
        self.ok("add", "alpha", "http://127.0.0.1:9/hook", "--max-attempts", "7")
        self.ok("add", "beta", "https://example.com/x?y=1", "--inactive")
        self.ok("add", "gamma-3", "http://localhost:8080/")

        hooks = self.db_hooks()
        self.assertEqual(hooks["alpha"], ("http://127.0.0.1:9/hook", 1, 7))
        self.assertEqual(hooks["beta"][:2], ("https://example.com/x?y=1", 0))
        self.assertEqual(hooks["gamma-3"][:2], ("http://localhost:8080/", 1))
        self.assertGreater(hooks["gamma-3"][2], 0)

        lines = [ln for ln in self.ok("list").splitlines() if ln.strip()]
        self.assertEqual(len(lines), 3, lines)
        for ln, (label, url) in zip(lines, [("alpha", "http://127.0.0.1:9/hook"),
                                            ("beta", "https://example.com/x?y=1"),
                                            ("gamma-3", "http://localhost:8080/")]):
            self.assertIn(label, ln)
            self.assertIn(url, ln)

        self.assertEqual(self.show("alpha"), ("http://127.0.0.1:9/hook", 7, True))
        self.assertEqual(self.show("beta")[::2], ("https://example.com/x?y=1", False))

        self.ok("update", "alpha", "--destination", "https://new.example/h", "--max-attempts",
                "3", "--inactive")
        self.assertEqual(self.show("alpha"), ("https://new.example/h", 3, False))
        self.assertEqual(self.db_hooks()["alpha"], ("https://new.example/h", 0, 3))
        self.ok("update", "beta", "--active")
        self.assertEqual(self.db_hooks()["beta"][:2], ("https://example.com/x?y=1", 1))
        self.ok("update", "alpha", "--active")
        self.assertEqual(self.db_hooks()["alpha"], ("https://new.example/h", 1, 3))

        self.ok("rm", "gamma-3")
        self.assertNotIn("gamma-3", self.db_hooks())
        lines = [ln for ln in self.ok("list").splitlines() if ln.strip()]
        self.assertEqual(len(lines), 2, lines)
        self.assertNotIn("gamma-3", "\n".join(lines))
        self.fails("show", "gamma-3")
        self.fails("rm", "gamma-3")

    def test_errors(self):
        self.ok("add", "d", "http://a.example/")
        self.fails("add", "Bad_Label", "http://x.example/")
        self.fails("add", "UPPER", "http://x.example/")
        self.fails("add", "a" * 64, "http://x.example/")
        self.fails("add", "ok", "ftp://x.example/")
        self.fails("add", "ok", "not a url")
        self.fails("add", "ok", "")
        self.fails("add", "ok")
        self.fails("add", "ok", "http://x.example/", "--max-attempts", "abc")
        self.fails("add", "d", "http://b.example/")  # duplicate
        self.fails("show", "nope")
        self.fails("update", "nope", "--max-attempts", "3")
        self.fails("rm", "nope")
        self.fails("update", "d", "--destination", "gopher://x/")
        self.assertEqual(self.db_hooks(), {"d": ("http://a.example/", 1,
                                                 self.db_hooks()["d"][2])})
        self.assertEqual(self.show("d")[0], "http://a.example/")

    def test_63_char_label_accepted(self):
        label = "a" * 30 + "-" + "0" * 32
        self.ok("add", label, "https://x.example/")
        self.assertIn(label, self.db_hooks())

    def test_data_dir_created_if_missing(self):
        data = os.path.join(make_tempdir(self), "new")
        p = run_soldr("webhook", "add", "fresh", "http://x.example/", "--data-dir", data)
        self.assertEqual(p.returncode, 0, err(p))
        self.assertTrue(os.path.exists(os.path.join(data, "soldr.db")))


if __name__ == "__main__":
    unittest.main()
