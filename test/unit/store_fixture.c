/* The store tests' fixture: see store_fixture.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "common/errors.h"
#include "common/id.h"
#include "common/log.h"
#include "common/request.h"
#include "store/store.h"

#include "store_fixture.h"
#define MAX_REQ (1u << 20)

/* ---- fixture ---------------------------------------------------------------- */

int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/soldr-unit-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/soldr.db", f->dir);
    if (pipe2(f->fallback, O_CLOEXEC) != 0)
        return -1;
    f->opts.path = f->path;
    f->opts.durability = SOLDR_DURABILITY_FULL;
    f->opts.busy_timeout_ms = 5000;
    f->opts.max_queue_bytes = 256u << 20;
    f->opts.fallback_fd = f->fallback[1];
    id_gen_init(&f->ids);
    *state = f;
    return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int teardown(void **state)
{
    struct fx *f = *state;
    close(f->fallback[0]);
    close(f->fallback[1]);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

struct store *open_store(struct fx *f)
{
    struct store *st = NULL;
    int rc = store_open(&st, &f->opts);
    if (rc != 0)
        fail_msg("store_open(%s) = %d (%s)", f->path, rc, soldr_strerror(rc));
    assert_non_null(st);
    return st;
}

/* Everything the store wrote to the fallback pipe so far (NUL-terminated). */
char *drain_fallback(struct fx *f, size_t *len)
{
    int fl = fcntl(f->fallback[0], F_GETFL);
    fcntl(f->fallback[0], F_SETFL, fl | O_NONBLOCK);
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap + 1);
    assert_non_null(p);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            p = realloc(p, cap + 1);
            assert_non_null(p);
        }
        ssize_t r = read(f->fallback[0], p + n, cap - n);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        break; /* EAGAIN: nothing more */
    }
    p[n] = '\0';
    *len = n;
    return p;
}

/* One SQL integer from a separate connection (the test's own view of the file). */
long long sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long long v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

void sql_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
}

/* ---- requests --------------------------------------------------------------- */

/* Request number i: distinct id, awkward bytes everywhere (binary body, empty
 * body, repeated headers, invalid UTF-8 in target and a header value). */
void make_request(struct fx *f, struct soldr_request *r, int i)
{
    req_init(r, MAX_REQ);
    id_new(&f->ids, (uint64_t)time_now_ms(), r->id);
    snprintf(r->webhook, sizeof r->webhook, "hook-%d", i % 7);
    r->received_at = 1763787828000LL + i;
    snprintf(r->peer, sizeof r->peer, "198.51.100.%d:%d", i % 250, 40000 + i);
    assert_int_equal(req_set(r, &r->method, i % 3 ? "POST" : "PUT", i % 3 ? 4 : 3), 0);
    char target[64];
    int tl = snprintf(target, sizeof target, "/in/%d?q=%s", i, i % 5 == 0 ? "\xff\xfe" : "ok");
    assert_int_equal(req_set(r, &r->target, target, (size_t)tl), 0);
    char host[96];
    int hl = snprintf(host, sizeof host, "%s.wh.localhost", r->webhook);
    assert_int_equal(req_push_header(r, "Host", 4, host, (size_t)hl), 0);
    assert_int_equal(req_push_header(r, "X-Dup", 5, "a", 1), 0);
    assert_int_equal(req_push_header(r, "x-dup", 5, "  b ", 4), 0);
    assert_int_equal(req_push_header(r, "X-Empty", 7, "", 0), 0);
    if (i % 4 == 1)
        assert_int_equal(req_push_header(r, "X-Bin", 5, "\x01\xff\xc0\x80", 4), 0);
    if (i % 6 != 2) {
        unsigned char body[600];
        size_t n = (size_t)(i % 600) + 1;
        for (size_t k = 0; k < n; k++)
            body[k] = (unsigned char)(k + (size_t)i);
        assert_int_equal(req_set(r, &r->body, body, n), 0);
    }
}

void assert_span_equal(const struct soldr_request *a, struct span sa, const struct soldr_request *b,
                       struct span sb, const char *what)
{
    if (sa.len != sb.len)
        fail_msg("%s of %s: length %u != %u", what, a->id, sa.len, sb.len);
    if (sa.len && memcmp(req_str(a, sa), req_str(b, sb), sa.len) != 0)
        fail_msg("%s of %s: bytes differ", what, a->id);
}

void assert_req_equal(const struct soldr_request *a, const struct soldr_request *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->webhook, b->webhook);
    assert_int_equal(a->received_at, b->received_at);
    assert_string_equal(a->peer, b->peer);
    assert_span_equal(a, a->method, b, b->method, "method");
    assert_span_equal(a, a->target, b, b->target, "target");
    assert_span_equal(a, a->body, b, b->body, "body");
    if (a->nheaders != b->nheaders)
        fail_msg("%s: %zu headers != %zu", a->id, a->nheaders, b->nheaders);
    for (size_t i = 0; i < a->nheaders; i++) {
        assert_span_equal(a, a->headers[i].name, b, b->headers[i].name, "header name");
        assert_span_equal(a, a->headers[i].value, b, b->headers[i].value, "header value");
    }
}

void assert_stored(struct store *st, const struct soldr_request *want)
{
    struct soldr_request got;
    req_init(&got, MAX_REQ);
    int rc = store_request_get(st, want->id, &got);
    if (rc != 0)
        fail_msg("store_request_get(%s) = %d (%s)", want->id, rc, soldr_strerror(rc));
    assert_req_equal(want, &got);
    req_free(&got);
}

void assert_not_stored(struct store *st, const char *id)
{
    struct soldr_request got;
    req_init(&got, MAX_REQ);
    int rc = store_request_get(st, id, &got);
    if (rc != SOLDR_ENOTFOUND)
        fail_msg("store_request_get(%s) = %d, want SOLDR_ENOTFOUND", id, rc);
    req_free(&got);
}
