#!/usr/bin/env python3
"""Writes the seed corpora under test/fuzz/corpus/<target>/ (one file per
seed, named by what it exercises). Run it again after changing a seed;
libFuzzer grows its own corpus from these in a copy (run_fuzz.sh)."""
import base64
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "fuzz-secret-0123456789abcdef-0123456789"  # fuzz_mgmt_env.h FUZZ_SECRET
REQ_ID = "01890a5d-ac96-774b-bcce-b302099a8057"  # fuzz_mgmt_env.h FUZZ_REQ_ID
AUTH = "Authorization: Bearer " + SECRET + "\r\n"


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def post(host, body, path="/hook", extra=""):
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body.encode())}\r\n{extra}\r\n{body}")


def ingest():
    h = "tenant-1.wh.example.com"
    chunked = (f"POST /c HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    return {
        "post_json": post(h, '{"event":"paid","amount":42}'),
        "post_port_case": post("Tenant-1.WH.Example.COM:8080", "x", "/p?q=1"),
        "get": f"GET /x?y=z HTTP/1.1\r\nHost: {h}\r\n\r\n",
        "http10": f"GET / HTTP/1.0\r\nHost: {h}\r\n\r\n",
        "chunked": chunked,
        "pipelined": post(h, "a") + post(h, "bb", "/2") + f"GET /3 HTTP/1.1\r\nHost: {h}\r\n\r\n",
        "keepalive_close": post(h, "1") + post(h, "2", extra="Connection: close\r\n") + post(h, "3"),
        "expect_100": post(h, "{}", extra="Expect: 100-continue\r\n"),
        "unknown_host": post("example.org", "x"),
        "no_host": "POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
        "two_hosts": f"GET / HTTP/1.1\r\nHost: {h}\r\nHost: b.wh.example.com\r\n\r\n",
        "body_too_large": post(h, "x" * 3000),
        "cl_too_large": f"POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 999999\r\n\r\n",
        "long_target": f"GET /{'a' * 1500} HTTP/1.1\r\nHost: {h}\r\n\r\n",
        "many_headers": f"GET / HTTP/1.1\r\nHost: {h}\r\n" + "X-A: b\r\n" * 300 + "\r\n",
        "malformed": "GARBAGE\r\n\r\n",
        "cl_and_te": (f"POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 3\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "half_request": f"POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 10\r\n\r\nabc",
        "binary_body": (f"POST /b HTTP/1.1\r\nHost: {h}\r\nContent-Length: 256\r\n\r\n".encode()
                        + bytes(range(256))),
        "utf8_header": post(h, "x", extra="X-Name: caf\u00e9 \u2603\r\n"),
        "obs_fold": f"GET / HTTP/1.1\r\nHost: {h}\r\nX-Fold: a\r\n b\r\n\r\n",
        "upgrade": f"GET / HTTP/1.1\r\nHost: {h}\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
        "connect": f"CONNECT {h}:443 HTTP/1.1\r\nHost: {h}\r\n\r\n",
        "empty": "",
        # What llhttp 8 lets through and httpd refuses (CVE-2025-23167 and friends).
        "smuggle_cr_any": (f"POST / HTTP/1.1\r\nHost: {h}\r\nContent-Length: 0\r\n\rX"
                           f"GET /smuggled HTTP/1.1\r\nHost: {h}\r\n\r\n"),
        "te_http10": (f"POST / HTTP/1.0\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "1\r\nx\r\n0\r\n\r\n"),
        "empty_field_name": f"GET / HTTP/1.1\r\nHost: {h}\r\n: v\r\n\r\n",
        "obs_fold_tab": f"GET / HTTP/1.1\r\nHost: {h}\r\nX-A: a\r\n\t b\r\n\r\n",
        "bare_lf": f"GET / HTTP/1.1\nHost: {h}\nX-A: a\n\n",
    }


def mgmt_http():
    def req(method, path, body=None, auth=True, extra=""):
        s = f"{method} {path} HTTP/1.1\r\nHost: admin\r\n" + (AUTH if auth else "") + extra
        if body is not None:
            b = body if isinstance(body, str) else json.dumps(body)
            s += f"Content-Type: application/json\r\nContent-Length: {len(b.encode())}\r\n\r\n{b}"
        else:
            s += "\r\n"
        return s

    wh = {"id": "new-hook", "destination": "https://example.org/in", "max_attempts": 3,
          "timeout_ms": 1000, "backoff_base_ms": 100, "backoff_cap_ms": 1000,
          "max_concurrency": 2, "signing_secret": "whsec_" + base64.b64encode(b"k" * 24).decode(),
          "alert_email": "ops@example.org", "alert_url": "http://example.org/alert",
          "active": True}
    return {
        "healthz": req("GET", "/healthz", auth=False),
        "ui_index": req("GET", "/", auth=False),
        "ui_file_traversal": req("GET", "/../etc/passwd", auth=False),
        "no_auth": req("GET", "/api/v1/webhooks", auth=False),
        "bad_auth": req("GET", "/api/v1/webhooks", auth=False,
                        extra="Authorization: Bearer " + "x" * len(SECRET) + "\r\n"),
        "webhooks_list": req("GET", "/api/v1/webhooks"),
        "webhook_create": req("POST", "/api/v1/webhooks", wh),
        "webhook_get": req("GET", "/api/v1/webhooks/seed"),
        "webhook_put": req("PUT", "/api/v1/webhooks/seed",
                           {"destination": "http://127.0.0.1:9/x", "active": False}),
        "webhook_patch": req("PATCH", "/api/v1/webhooks/seed", {"max_attempts": 7}),
        "webhook_delete": req("DELETE", "/api/v1/webhooks/other"),
        "webhook_405": req("POST", "/api/v1/webhooks/seed", {}),
        "requests_list": req("GET", "/api/v1/requests?webhook=seed&state=pending&limit=2"
                                    "&from=0&to=9999999999999&status=200&q=%2Fhook"),
        "requests_cursor": req("GET", f"/api/v1/requests?limit=1&cursor={REQ_ID}"),
        "request_get": req("GET", f"/api/v1/requests/{REQ_ID}"),
        "request_patch": req("PATCH", f"/api/v1/requests/{REQ_ID}",
                             {"method": "PUT", "target": "/new?x=1",
                              "headers": [["X-A", "b"], ["Content-Type", "text/plain"]],
                              "body": "edited"}),
        "request_patch_b64": req("PATCH", f"/api/v1/requests/{REQ_ID}",
                                 {"body_b64": base64.b64encode(b"\x00\xff").decode()}),
        "request_resend": req("POST", f"/api/v1/requests/{REQ_ID}/resend"),
        "bulk_resend": req("POST", "/api/v1/requests/resend", {"webhook": "seed", "state": "pending"}),
        "stats": req("GET", "/api/v1/stats"),
        "metrics": req("GET", "/metrics"),
        "pipelined": req("GET", "/healthz", auth=False) + req("GET", "/api/v1/webhooks/seed"),
        "bad_json": req("POST", "/api/v1/webhooks", '{"id": "x",'),
        "nul_json": req("POST", "/api/v1/webhooks", '{"id": "a\\u0000b"}'),
        "pct_path": req("GET", "/api/v1/webhooks/s%65ed"),
        "bad_target": req("GET", "*"),
    }


def mgmt_json():
    # First byte: the route (fuzz_mgmt_json.c); the rest: the body (or query).
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    seeds = {
        "0_create": (0, {"id": "fresh", "destination": "https://example.org/in",
                         "max_attempts": 5, "signing_secret": secret}),
        "0_create_bad_id": (0, {"id": "UPPER", "destination": "http://x"}),
        "0_create_unknown": (0, {"id": "a", "destination": "http://x", "nope": 1}),
        "0_create_readonly": (0, {"id": "a", "destination": "http://x", "created_at": 1}),
        "1_put": (1, {"destination": "http://127.0.0.1:1/", "timeout_ms": 100,
                      "backoff_base_ms": 10, "backoff_cap_ms": 10, "alert_email": "a@b"}),
        "1_put_no_dest": (1, {"active": True}),
        "2_patch": (2, {"max_concurrency": 1000, "alert_url": "https://a/b"}),
        "2_patch_float": (2, {"max_attempts": 1.5}),
        "2_patch_big": (2, {"backoff_cap_ms": 4294967296}),
        "3_edit": (3, {"method": "DELETE", "target": "/a/b?c", "headers": [["A", "b"]],
                       "body": "x"}),
        "3_edit_b64": (3, {"body_b64": "AAEC"}),
        "3_edit_both": (3, {"body": "a", "body_b64": "YQ=="}),
        "3_edit_crlf": (3, {"headers": [["X", "a\r\nInjected: 1"]]}),
        "3_edit_empty": (3, {}),
        "4_bulk": (4, {"webhook": "seed", "state": "failed", "from": 1, "to": 2,
                       "status": 500, "q": "/h"}),
        "4_bulk_all": (4, {"all": True}),
        "4_bulk_empty": (4, {}),
        "5_list": (5, "webhook=seed&state=pending&limit=10&q=%2F&from=1&to=2&status=404"),
        "5_list_cursor": (5, f"cursor={REQ_ID}&limit=500"),
        "5_list_bad": (5, "limit=0&limit=1"),
    }
    out = {}
    for name, (route, body) in seeds.items():
        b = body if isinstance(body, str) else json.dumps(body)
        out[name] = bytes([route]) + b.encode()
    return out


def replay_line():
    rec = {"type": "soldr.request", "v": 1, "id": REQ_ID, "received_at": 1700000000000,
           "webhook": "seed", "peer": "127.0.0.1:5555", "host": "seed.wh.example.com",
           "method": "POST", "target": "/hook?x=1",
           "headers": [["Host", "seed.wh.example.com"], ["Content-Type", "application/json"]],
           "body_b64": base64.b64encode(b'{"a":1}').decode()}
    b64 = dict(rec)
    del b64["target"], b64["headers"]
    b64["target_b64"] = base64.b64encode(b"/\x01\xff").decode()
    b64["headers_b64"] = [[base64.b64encode(b"X\x00").decode(), base64.b64encode(b"\xff").decode()]]
    nopeer = dict(rec)
    del nopeer["peer"]
    return {
        "record": json.dumps(rec, separators=(",", ":")),
        "record_spaced": json.dumps(rec, indent=1),
        "record_b64": json.dumps(b64),
        "record_no_peer": json.dumps(nopeer),
        "record_empty_body": json.dumps(dict(rec, body_b64="", headers=[])),
        "record_bad_b64": json.dumps(dict(rec, body_b64="abc")),
        "headers_block": "Host: a\r\nX-Empty:\r\nX-Sp:  two\r\nX-Colon: a:b\r\n",
        "not_json": "hello",
    }


def replay_file():
    rec = replay_line()
    line = rec["record"]
    r2 = json.loads(line)
    r2["id"] = "01890a5d-ac96-774b-bcce-b302099a8058"
    r2["body_b64"] = base64.b64encode(b"y" * 300).decode()
    l2 = json.dumps(r2, separators=(",", ":"))
    return {
        "raw": line + "\n",
        "journal_mixed": ("Started soldr.\n" + '{"ts":"x","level":"info","event":"a"}\n'
                          + line + "\n" + "soldr[1]: " + l2 + "\r\n"),
        "split": line[:40] + "\n" + line[40:90] + "\n" + line[90:] + "\n",
        "split_then_new": l2[:100] + "\n" + line + "\n" + l2[100:] + "\n",
        "twice": line + "\n" + line + "\n",
        "cut_eof": line[:-5],
    }


def outbound_url():
    return {
        "plain": "https://d.example/hook?k=1\n/a/b?x=2",
        "root": "http://d.example\n/",
        "no_slash": "http://d.example:8080\n@evil.example/x",
        "absolute": "http://user@d.example/p/\nhttp://evil.example/",
        "fragment": "https://d.example/h#f\n/x?y#z",
        "backslash": "http://d.example\n\\\\evil.example\\x",
    }


if __name__ == "__main__":
    write("fuzz_ingest_http", ingest())
    write("fuzz_mgmt_http", mgmt_http())
    write("fuzz_mgmt_json", mgmt_json())
    write("fuzz_replay_line", replay_line())
    write("fuzz_replay_file", replay_file())
    write("fuzz_outbound_url", outbound_url())
