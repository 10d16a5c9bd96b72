/* Unit tests for src/store/reads.c: the request list (every filter, keyset
 * pages without gaps or repeats, a replayed old request, ids made while the
 * clock stepped back), the query plan of every filter, the detail document
 * (text, binary, edits, attempts) and the stats document. Each test has a
 * fresh database (store_fixture.c). Expected results come from plain SQL on
 * a second connection, written independently of the code under test. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "common/id.h"
#include "common/log.h"
#include "common/request.h"
#include "store/access.h"
#include "store/requests_api.h"
#include "store/store.h"
#include "store/store_int.h"

#include "store_fixture.h"

#define N           600
#define BASE        1795000000000LL /* 2026-11-17 */
#define STEP        997
#define SKEWED_FROM 300 /* requests 300..309: the clock stepped back 2 minutes */
#define SKEWED_TO   310
#define SKEW_MS     120000

static const char *const HOOKS[] = {"alpha", "beta", "gamma"};
static const char *const ST[] = {"delivered", "failed", "pending", "orphaned", "sending"};

static void build(struct soldr_request *r, struct id_gen *g, long long received_at, long long id_ms,
                  const char *hook, int i)
{
    req_init(r, MAX_REQ);
    id_new(g, (uint64_t)id_ms, r->id);
    snprintf(r->webhook, sizeof r->webhook, "%s", hook);
    r->received_at = received_at;
    snprintf(r->peer, sizeof r->peer, "192.0.2.1:%d", 1000 + i);
    assert_int_equal(req_set(r, &r->method, "POST", 4), 0);
    char t[64];
    int n = snprintf(t, sizeof t, "/t/%d?k=%d", i, i % 10);
    assert_int_equal(req_set(r, &r->target, t, (size_t)n), 0);
    assert_int_equal(req_push_header(r, "Content-Type", 12, "application/json", 16), 0);
    char body[64];
    n = snprintf(body, sizeof body, "{\"n\":%d}", i);
    assert_int_equal(req_set(r, &r->body, body, (size_t)n), 0);
}

/* N requests a second apart over three webhooks, states cycling, then one
 * replayed request older than all of them (inserted last: the highest seq). */
static struct store *seed(struct fx *f, char ids[][SOLDR_ID_LEN + 1])
{
    struct store *st = open_store(f);
    struct id_gen g, old;
    id_gen_init(&g);
    id_gen_init(&old);
    assert_int_equal(store_begin(st), 0);
    for (int i = 0; i < N; i++) {
        struct soldr_request r;
        long long at = BASE + (long long)i * STEP;
        /* While the clock is stepped back, ids keep the later time (id_new). */
        long long id_ms = i >= SKEWED_FROM && i < SKEWED_TO ? at + SKEW_MS : at;
        build(&r, &g, at, id_ms, HOOKS[i % 3], i);
        assert_int_equal(store_replay_insert(st, &r), 1);
        memcpy(ids[i], r.id, sizeof ids[i]);
        req_free(&r);
    }
    struct soldr_request r;
    build(&r, &old, BASE - 50000, BASE - 50000, "beta", N);
    assert_int_equal(store_replay_insert(st, &r), 1);
    memcpy(ids[N], r.id, sizeof ids[N]);
    req_free(&r);
    assert_int_equal(store_commit(st), 0);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sql_exec(db, "BEGIN");
    sql_exec(db, "UPDATE requests SET state = CASE seq % 5 WHEN 0 THEN 'delivered' "
                 "WHEN 1 THEN 'failed' WHEN 2 THEN 'pending' WHEN 3 THEN 'orphaned' "
                 "ELSE 'sending' END, "
                 "last_status = CASE seq % 5 WHEN 0 THEN 200 WHEN 1 THEN 500 "
                 "WHEN 2 THEN 503 ELSE NULL END, attempts = seq % 4");
    sql_exec(db, "INSERT INTO request_edits (seq, method, target, headers, body, edited_at) "
                 "SELECT seq, 'PUT', '/edited', 'X-E: 1\r\n', X'00ff', 5 FROM requests "
                 "WHERE seq % 11 = 0");
    sql_exec(db, "COMMIT");
    sqlite3_close(db);
    return st;
}

/* The ids the filter must list, newest first, by plain SQL on received_at. */
static int expected(struct fx *f, const char *where, char (*out)[SOLDR_ID_LEN + 1], int cap)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT id FROM requests WHERE %s ORDER BY id DESC", where);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int n = 0;
    while (sqlite3_step(s) == SQLITE_ROW && n < cap)
        snprintf(out[n++], SOLDR_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* Pages through the list with `limit` and checks it against `where`. */
static void check_filter(struct fx *f, struct store *st, const struct store_filter *flt,
                         const char *where, int limit)
{
    static char want[N + 1][SOLDR_ID_LEN + 1];
    int nwant = expected(f, where, want, N + 1);
    struct store_reader *rd = store_reader_get(st);
    assert_non_null(rd);
    char cursor[SOLDR_ID_LEN + 1] = "";
    int got = 0, pages = 0;
    for (;;) {
        cJSON *doc = store_read_requests(rd, flt, limit, cursor[0] ? cursor : NULL);
        assert_non_null(doc);
        const cJSON *arr = cJSON_GetObjectItem(doc, "requests"), *it;
        assert_true(cJSON_GetArraySize(arr) <= limit);
        cJSON_ArrayForEach(it, arr)
        {
            const char *id = cJSON_GetObjectItem(it, "id")->valuestring;
            if (got >= nwant || strcmp(id, want[got]) != 0)
                fail_msg("filter %s: item %d is %s, want %s", where, got, id,
                         got < nwant ? want[got] : "(end)");
            got++;
        }
        const cJSON *next = cJSON_GetObjectItem(doc, "next_cursor");
        pages++;
        if (cJSON_IsNull(next)) {
            cJSON_Delete(doc);
            break;
        }
        assert_true(cJSON_IsString(next));
        assert_int_equal(cJSON_GetArraySize(arr), limit); /* only full pages have a next */
        snprintf(cursor, sizeof cursor, "%s", next->valuestring);
        cJSON_Delete(doc);
        assert_true(pages <= N + 1);
    }
    store_reader_put(st, rd);
    if (got != nwant)
        fail_msg("filter %s: listed %d of %d", where, got, nwant);
}

static void list_filters_match_sql(void **state)
{
    struct fx *f = *state;
    static char ids[N + 1][SOLDR_ID_LEN + 1];
    struct store *st = seed(f, ids);
    long long mid = BASE + 200LL * STEP, late = BASE + (long long)(SKEWED_FROM + 5) * STEP;
    char w[256];
    struct store_filter flt = {0};

    check_filter(f, st, &flt, "1", 50);
    check_filter(f, st, &flt, "1", 1);
    check_filter(f, st, &flt, "1", 500);
    /* The replayed request (highest seq) is the last of all, not the first. */
    struct store_reader *rd = store_reader_get(st);
    cJSON *doc = store_read_requests(rd, &flt, 1, NULL);
    assert_string_not_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "requests"), 0), "id")
            ->valuestring,
        ids[N]);
    cJSON_Delete(doc);
    store_reader_put(st, rd);

    flt = (struct store_filter){.webhook = "beta"};
    check_filter(f, st, &flt, "webhook = 'beta'", 17);
    for (int i = 0; i < 5; i++) {
        flt = (struct store_filter){.state = ST[i]};
        snprintf(w, sizeof w, "state = '%s'", ST[i]);
        check_filter(f, st, &flt, w, 9);
        flt.webhook = "gamma";
        snprintf(w, sizeof w, "state = '%s' AND webhook = 'gamma'", ST[i]);
        check_filter(f, st, &flt, w, 9);
    }
    flt = (struct store_filter){.from = mid};
    snprintf(w, sizeof w, "received_at >= %lld", mid);
    check_filter(f, st, &flt, w, 50);
    flt = (struct store_filter){.to = mid};
    snprintf(w, sizeof w, "received_at < %lld", mid);
    check_filter(f, st, &flt, w, 50);
    /* Bounds inside the stepped-back stretch: received_at decides, not the id. */
    flt = (struct store_filter){.from = late - 3 * STEP, .to = late};
    snprintf(w, sizeof w, "received_at >= %lld AND received_at < %lld", late - 3 * STEP, late);
    check_filter(f, st, &flt, w, 2);
    flt = (struct store_filter){.to = late};
    snprintf(w, sizeof w, "received_at < %lld", late);
    check_filter(f, st, &flt, w, 30);
    /* The replayed old request: found by its received_at. */
    flt = (struct store_filter){.to = BASE};
    snprintf(w, sizeof w, "received_at < %lld", (long long)BASE);
    check_filter(f, st, &flt, w, 5);
    flt = (struct store_filter){.status = 503};
    check_filter(f, st, &flt, "last_status = 503", 20);
    flt = (struct store_filter){.q = "k=7"};
    check_filter(f, st, &flt, "instr(target, 'k=7') > 0", 11);
    flt = (struct store_filter){.q = "%"};
    check_filter(f, st, &flt, "0", 11); /* q is text, not a LIKE pattern */
    flt = (struct store_filter){
        .webhook = "alpha", .state = "failed", .from = mid, .to = late, .status = 500, .q = "/t/"};
    snprintf(w, sizeof w,
             "webhook = 'alpha' AND state = 'failed' AND received_at >= %lld AND "
             "received_at < %lld AND last_status = 500",
             mid, late);
    check_filter(f, st, &flt, w, 3);
    store_close(st);
}

/* EXPLAIN QUERY PLAN of the list query of each filter, with and without a
 * cursor: no full table scan, and a temporary sort only over a partial index
 * of the (small) queue states. */
static void list_plans_use_indexes(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    store_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    const struct {
        const char *name;
        struct store_filter f;
    } cases[] = {
        {"none", {0}},
        {"webhook", {.webhook = "a"}},
        {"state=pending", {.state = "pending"}},
        {"state=sending", {.state = "sending"}},
        {"state=delivered", {.state = "delivered"}},
        {"state=failed", {.state = "failed"}},
        {"state=orphaned", {.state = "orphaned"}},
        {"webhook+state=pending", {.webhook = "a", .state = "pending"}},
        {"webhook+state=failed", {.webhook = "a", .state = "failed"}},
        {"from", {.from = 5}},
        {"to", {.to = 5}},
        {"from+to", {.from = 5, .to = 9}},
        {"status", {.status = 500}},
        {"q", {.q = "x"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int cur = 0; cur < 2; cur++) {
            char sql[1024], eqp[1100], plan[512] = "";
            assert_int_equal(store__list_sql(&cases[i].f, cur, sql, sizeof sql), 0);
            snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
            sqlite3_stmt *s;
            if (sqlite3_prepare_v2(db, eqp, -1, &s, NULL) != SQLITE_OK)
                fail_msg("%s: %s", sql, sqlite3_errmsg(db));
            while (sqlite3_step(s) == SQLITE_ROW) {
                const char *d = (const char *)sqlite3_column_text(s, 3);
                size_t l = strlen(plan);
                snprintf(plan + l, sizeof plan - l, "%s%s", l ? "; " : "", d);
            }
            sqlite3_finalize(s);
            print_message("plan %-22s%s %s\n", cases[i].name, cur ? "+cursor" : "       ", plan);
            if (strstr(plan, "SCAN r") && !strstr(plan, "INDEX"))
                fail_msg("%s: full table scan: %s", cases[i].name, plan);
            const char *queue = cases[i].f.state && (strcmp(cases[i].f.state, "pending") == 0 ||
                                                     strcmp(cases[i].f.state, "sending") == 0)
                                    ? cases[i].f.state
                                    : NULL;
            if (strstr(plan, "TEMP B-TREE") && !queue)
                fail_msg("%s: sorts: %s", cases[i].name, plan);
            if (queue && !strstr(plan, strcmp(queue, "pending") == 0 ? "requests_due_webhook"
                                                                     : "requests_sending"))
                fail_msg("%s: does not use the queue's partial index: %s", cases[i].name, plan);
            if (cases[i].f.state && strcmp(cases[i].f.state, "failed") == 0 &&
                !strstr(plan, "requests_failed"))
                fail_msg("%s: does not use requests_failed: %s", cases[i].name, plan);
        }
    }
    sqlite3_close(db);
}

static void list_rejects_bad_arguments(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct store_reader *rd = store_reader_get(st);
    struct store_filter flt = {.state = "pending' OR '1'='1"};
    assert_null(store_read_requests(rd, &flt, 10, NULL));
    flt = (struct store_filter){0};
    assert_null(store_read_requests(rd, &flt, 0, NULL));
    assert_null(store_read_requests(rd, &flt, 501, NULL));
    cJSON *doc = store_read_requests(rd, &flt, 10, NULL);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "requests")), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "next_cursor")));
    cJSON_Delete(doc);
    store_reader_put(st, rd);
    store_close(st);
}

/* ---- detail ------------------------------------------------------------------------ */

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    if (!cJSON_IsString(v))
        fail_msg("%s is not a string", k);
    return v->valuestring;
}

static void detail_text_binary_edit_attempts(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct id_gen g;
    id_gen_init(&g);
    struct soldr_request a, b;
    build(&a, &g, BASE, BASE, "alpha", 1);
    build(&b, &g, BASE + 1, BASE + 1, "alpha", 2);
    /* b: a binary body, a header in Latin-1, a duplicate header. */
    b.body.len = 0;
    assert_int_equal(req_set(&b, &b.body, "\x00\x01\xff", 3), 0);
    assert_int_equal(req_push_header(&b, "X-L1", 4, "caf\xe9", 4), 0);
    assert_int_equal(req_push_header(&b, "x-l1", 4, "two", 3), 0);
    assert_int_equal(store_replay_insert(st, &a), 1);
    assert_int_equal(store_replay_insert(st, &b), 1);
    store_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[2048];
    snprintf(sql, sizeof sql,
             "INSERT INTO attempts (request_seq, started_at, duration_ms, status, "
             "response_headers, response_body, error, manual) SELECT seq, 20, 5, 500, "
             "'Content-Type: text/plain\r\n', CAST('oops' AS BLOB), NULL, 0 FROM requests "
             "WHERE id = '%s'; "
             "INSERT INTO attempts (request_seq, started_at, duration_ms, status, "
             "response_headers, response_body, error, manual) SELECT seq, 10, 7, NULL, NULL, "
             "X'fffe', 'interrupted', 1 FROM requests WHERE id = '%s'; "
             "INSERT INTO request_edits VALUES ((SELECT seq FROM requests WHERE id = '%s'), "
             "'PUT', '/e?x=1', 'A: 1\r\nA: 2\r\n', CAST('edited' AS BLOB), 77)",
             b.id, b.id, b.id);
    sql_exec(db, sql);
    sqlite3_close(db);
    st = open_store(f);
    struct store_reader *rd = store_reader_get(st);
    int status = 0;

    cJSON *doc = store_read_request(rd, a.id, &status);
    assert_int_equal(status, 200);
    const cJSON *r = cJSON_GetObjectItem(doc, "request");
    assert_string_equal(str(r, "body"), "{\"n\":1}");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "body_b64")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "edited")));
    assert_string_equal(str(r, "peer"), "192.0.2.1:1001");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "attempts")), 0);
    cJSON_Delete(doc);

    doc = store_read_request(rd, b.id, &status);
    assert_int_equal(status, 200);
    r = cJSON_GetObjectItem(doc, "request");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "body")));
    assert_string_equal(str(r, "body_b64"), "AAH/");
    assert_string_equal(str(r, "method"), "POST"); /* the original, as received */
    assert_string_equal(str(r, "target"), "/t/2?k=2");
    const cJSON *h = cJSON_GetObjectItem(r, "headers");
    assert_int_equal(cJSON_GetArraySize(h), 3);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(h, 1), 1)->valuestring,
                        "caf\xc3\xa9");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(h, 2), 0)->valuestring, "x-l1");
    const cJSON *e = cJSON_GetObjectItem(r, "edited");
    assert_true(cJSON_IsObject(e));
    assert_string_equal(str(e, "method"), "PUT");
    assert_string_equal(str(e, "target"), "/e?x=1");
    assert_string_equal(str(e, "body"), "edited");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e, "headers")), 2);
    assert_int_equal(cJSON_GetObjectItem(e, "edited_at")->valuedouble, 77);
    const cJSON *at = cJSON_GetObjectItem(doc, "attempts");
    assert_int_equal(cJSON_GetArraySize(at), 2);
    const cJSON *a0 = cJSON_GetArrayItem(at, 0), *a1 = cJSON_GetArrayItem(at, 1);
    assert_int_equal(cJSON_GetObjectItem(a0, "status")->valuedouble, 500); /* id order */
    assert_string_equal(str(a0, "response_body"), "oops");
    assert_string_equal(str(a0, "response_headers"), "Content-Type: text/plain\r\n");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(a0, "manual")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(a1, "status")));
    assert_string_equal(str(a1, "response_body_b64"), "//4=");
    assert_string_equal(str(a1, "error"), "interrupted");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a1, "manual")));
    cJSON_Delete(doc);

    /* The list says edited for b only. */
    struct store_filter flt = {0};
    doc = store_read_requests(rd, &flt, 10, NULL);
    const cJSON *arr = cJSON_GetObjectItem(doc, "requests");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "edited")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "edited")));
    cJSON_Delete(doc);

    status = 0;
    assert_null(store_read_request(rd, "01a201ce-b412-73fd-810e-bf91881a4000", &status));
    assert_int_equal(status, 404);
    store_reader_put(st, rd);
    req_free(&a);
    req_free(&b);
    store_close(st);
}

/* ---- stats ------------------------------------------------------------------------- */

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("%s is not a number", k);
    return v->valuedouble;
}

static void stats_document(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct soldr_webhook wh;
    store_webhook_defaults(&wh);
    snprintf(wh.id, sizeof wh.id, "%s", "zeta"); /* configured, never used */
    snprintf(wh.destination, sizeof wh.destination, "%s", "https://example.com/");
    assert_int_equal(store_webhook_insert(st, &wh), 0);
    store_close(st);
    long long now = time_now_ms(), today = now / 86400000;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO rollups (webhook, day, received, delivered, failed, retried, orphaned, "
             "purged) VALUES ('alpha', %lld, 10, 7, 1, 3, 0, 2), ('alpha', %lld, 5, 5, 0, 0, 0, "
             "0), ('beta', %lld, 100, 0, 0, 0, 100, 0);"
             "INSERT INTO requests (id, webhook, received_at, method, target, state, "
             "next_attempt_at) VALUES "
             "('01000000-0000-7000-8000-000000000001', 'alpha', %lld, 'POST', '/', 'pending', 0),"
             "('01000000-0000-7000-8000-000000000002', 'alpha', %lld, 'POST', '/', 'sending', 0),"
             "('01000000-0000-7000-8000-000000000003', 'omega', %lld, 'POST', '/', 'pending', 0),"
             "('01000000-0000-7000-8000-000000000004', 'omega', 1, 'POST', '/', 'delivered', 0)",
             today, today - 40, today - 29, now - 5000, now - 60000, now - 1000);
    sql_exec(db, sql);
    sqlite3_close(db);
    st = open_store(f);
    struct store_reader *rd = store_reader_get(st);
    cJSON *doc = store_read_stats(rd);
    assert_non_null(doc);
    const cJSON *t = cJSON_GetObjectItem(doc, "totals");
    assert_int_equal(num(t, "received"), 115);
    assert_int_equal(num(t, "delivered"), 12);
    assert_int_equal(num(t, "failed"), 1);
    assert_int_equal(num(t, "retried"), 3);
    assert_int_equal(num(t, "orphaned"), 100);
    assert_int_equal(num(t, "purged"), 2);
    assert_int_equal(num(doc, "pending"), 3);
    double age = num(doc, "oldest_pending_age_ms");
    assert_true(age >= 60000 && age < 120000);
    const cJSON *w = cJSON_GetObjectItem(doc, "webhooks");
    assert_int_equal(cJSON_GetArraySize(w), 4); /* alpha beta omega zeta */
    const char *names[] = {"alpha", "beta", "omega", "zeta"};
    const int pend[] = {2, 0, 1, 0}, recv[] = {15, 100, 0, 0};
    for (int i = 0; i < 4; i++) {
        const cJSON *o = cJSON_GetArrayItem(w, i);
        assert_string_equal(str(o, "webhook"), names[i]);
        assert_int_equal(num(o, "pending"), pend[i]);
        assert_int_equal(num(o, "received"), recv[i]);
    }
    const cJSON *days = cJSON_GetObjectItem(doc, "days");
    assert_int_equal(cJSON_GetArraySize(days), 30);
    const cJSON *first = cJSON_GetArrayItem(days, 0), *last = cJSON_GetArrayItem(days, 29);
    assert_int_equal(num(first, "received"), 100); /* today - 29: in; today - 40: out */
    assert_int_equal(num(first, "orphaned"), 100);
    assert_int_equal(num(last, "received"), 10);
    assert_int_equal(num(last, "delivered"), 7);
    assert_int_equal(strlen(str(last, "day")), 10);
    assert_null(cJSON_GetObjectItem(last, "purged"));
    cJSON_Delete(doc);
    store_reader_put(st, rd);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(list_filters_match_sql, setup, teardown),
        cmocka_unit_test_setup_teardown(list_plans_use_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(list_rejects_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(detail_text_binary_edit_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(stats_document, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
