/* Unit tests for src/store: schema, webhooks and replay inserts. Each test
 * gets a fresh database (store_fixture.c). */
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
/* ---- schema ----------------------------------------------------------------- */

static void open_applies_migrations(void **state)
{
    struct fx *f = *state;
    assert_true(store_schema_version() >= 1);
    struct store *st = open_store(f);
    assert_int_equal(sql_int(f->path, "PRAGMA user_version"), store_schema_version());
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                      "AND name IN ('webhooks', 'requests', 'attempts')"),
                     3);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    store_close(st);
    /* Opening again applies nothing and keeps the data. */
    st = open_store(f);
    struct soldr_webhook wh;
    store_webhook_defaults(&wh);
    snprintf(wh.id, sizeof wh.id, "%s", "keep");
    snprintf(wh.destination, sizeof wh.destination, "%s", "https://example.com/");
    assert_int_equal(store_webhook_insert(st, &wh), 0);
    store_close(st);
    st = open_store(f);
    assert_int_equal(store_webhook_get(st, "keep", &wh), 0);
    store_close(st);
    assert_int_equal(sql_int(f->path, "PRAGMA user_version"), store_schema_version());
}

static void open_refuses_newer_schema(void **state)
{
    struct fx *f = *state;
    store_close(open_store(f));
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_version() + 1);
    sql_exec(db, sql);
    sqlite3_close(db);
    struct store *st = NULL;
    assert_int_equal(store_open(&st, &f->opts), SOLDR_ESCHEMA);
    /* The file was left alone. */
    assert_int_equal(sql_int(f->path, "PRAGMA user_version"), store_schema_version() + 1);
}

static void open_fails_without_directory(void **state)
{
    struct fx *f = *state;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/missing/soldr.db", f->dir);
    struct store_opts o = f->opts;
    o.path = path;
    struct store *st = NULL;
    assert_int_equal(store_open(&st, &o), SOLDR_ESTORE);
    assert_null(st);
}

/* ---- webhooks --------------------------------------------------------------- */

static struct soldr_webhook webhook(const char *id, const char *dest)
{
    struct soldr_webhook wh;
    store_webhook_defaults(&wh);
    snprintf(wh.id, sizeof wh.id, "%s", id);
    snprintf(wh.destination, sizeof wh.destination, "%s", dest);
    return wh;
}

struct list_ctx {
    char ids[16][SOLDR_LABEL_MAX + 1];
    int n, stop_after;
};

static int collect(void *arg, const struct soldr_webhook *wh)
{
    struct list_ctx *c = arg;
    if (c->n < 16)
        snprintf(c->ids[c->n], sizeof c->ids[0], "%s", wh->id);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void webhook_crud(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);

    struct soldr_webhook d;
    store_webhook_defaults(&d);
    assert_int_equal(d.active, 1);
    assert_true(d.max_attempts > 0);
    assert_true(d.timeout_ms > 0);
    assert_true(d.max_concurrency > 0);
    assert_true(d.backoff_base_ms > 0 && d.backoff_base_ms <= d.backoff_cap_ms);
    assert_string_equal(d.signing_secret, "");
    assert_int_equal(d.alerted_at, 0);

    struct soldr_webhook wh = webhook("stripe", "https://api.example.com/stripe");
    wh.max_attempts = 3;
    wh.timeout_ms = 5000;
    wh.backoff_base_ms = 1000;
    wh.backoff_cap_ms = 60000;
    wh.max_concurrency = 2;
    snprintf(wh.signing_secret, sizeof wh.signing_secret, "%s", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZI");
    snprintf(wh.alert_email, sizeof wh.alert_email, "%s", "ops@example.com");
    long long before = time_now_ms();
    assert_int_equal(store_webhook_insert(st, &wh), 0);
    assert_true(wh.created_at >= before && wh.created_at <= time_now_ms());
    assert_int_equal(wh.updated_at, wh.created_at);

    struct soldr_webhook dup = webhook("stripe", "https://other.example.com/");
    assert_int_equal(store_webhook_insert(st, &dup), SOLDR_EEXIST);

    struct soldr_webhook got;
    memset(&got, 0x55, sizeof got);
    assert_int_equal(store_webhook_get(st, "stripe", &got), 0);
    assert_string_equal(got.id, "stripe");
    assert_string_equal(got.destination, "https://api.example.com/stripe"); /* not overwritten */
    assert_int_equal(got.active, 1);
    assert_int_equal(got.max_attempts, 3);
    assert_int_equal(got.timeout_ms, 5000);
    assert_int_equal(got.backoff_base_ms, 1000);
    assert_int_equal(got.backoff_cap_ms, 60000);
    assert_int_equal(got.max_concurrency, 2);
    assert_string_equal(got.signing_secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZI");
    assert_string_equal(got.alert_email, "ops@example.com");
    assert_string_equal(got.alert_url, "");
    assert_int_equal(got.alerted_at, 0);
    assert_int_equal(got.created_at, wh.created_at);
    assert_int_equal(got.updated_at, wh.updated_at);
    assert_int_equal(store_webhook_get(st, "nope", &got), SOLDR_ENOTFOUND);

    /* Update. */
    wh.active = 0;
    wh.max_attempts = 25;
    snprintf(wh.destination, sizeof wh.destination, "%s", "http://10.0.0.1:8080/x?y=z");
    wh.signing_secret[0] = '\0'; /* back to unsigned */
    snprintf(wh.alert_url, sizeof wh.alert_url, "%s", "https://alerts.example.com/hook");
    wh.backoff_cap_ms = 7200000;
    usleep(2000);
    assert_int_equal(store_webhook_update(st, &wh), 0);
    assert_int_equal(store_webhook_get(st, "stripe", &got), 0);
    assert_string_equal(got.destination, "http://10.0.0.1:8080/x?y=z");
    assert_int_equal(got.active, 0);
    assert_int_equal(got.max_attempts, 25);
    assert_string_equal(got.signing_secret, "");
    assert_string_equal(got.alert_email, "ops@example.com");
    assert_string_equal(got.alert_url, "https://alerts.example.com/hook");
    assert_int_equal(got.backoff_cap_ms, 7200000);
    assert_int_equal(got.timeout_ms, 5000);
    assert_int_equal(got.created_at, wh.created_at);
    assert_true(got.updated_at > got.created_at);
    struct soldr_webhook ghost = webhook("ghost", "https://x/");
    assert_int_equal(store_webhook_update(st, &ghost), SOLDR_ENOTFOUND);
    assert_int_equal(store_webhook_get(st, "ghost", &got), SOLDR_ENOTFOUND);

    /* List, ordered by id, and stopping early. */
    const char *more[] = {"zeta", "alpha", "m-1", "0num"};
    for (int i = 0; i < 4; i++) {
        struct soldr_webhook w = webhook(more[i], "https://example.com/");
        assert_int_equal(store_webhook_insert(st, &w), 0);
    }
    struct list_ctx c = {.n = 0};
    assert_int_equal(store_webhook_list(st, collect, &c), 0);
    assert_int_equal(c.n, 5);
    const char *order[] = {"0num", "alpha", "m-1", "stripe", "zeta"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(c.ids[i], order[i]);
    struct list_ctx early = {.n = 0, .stop_after = 2};
    assert_int_equal(store_webhook_list(st, collect, &early), 0);
    assert_int_equal(early.n, 2);

    /* Delete: the webhook goes, its stored requests stay. */
    struct soldr_request r;
    make_request(f, &r, 0);
    snprintf(r.webhook, sizeof r.webhook, "%s", "alpha");
    assert_int_equal(store_replay_insert(st, &r), 1);
    assert_int_equal(store_webhook_delete(st, "alpha"), 0);
    assert_stored(st, &r);
    req_free(&r);
    assert_int_equal(store_webhook_get(st, "alpha", &got), SOLDR_ENOTFOUND);
    assert_int_equal(store_webhook_delete(st, "alpha"), SOLDR_ENOTFOUND);
    assert_int_equal(store_webhook_delete(st, "never"), SOLDR_ENOTFOUND);
    struct list_ctx after = {.n = 0};
    assert_int_equal(store_webhook_list(st, collect, &after), 0);
    assert_int_equal(after.n, 4);
    /* The id can be used again after a delete. */
    struct soldr_webhook again = webhook("alpha", "https://new.example.com/");
    assert_int_equal(store_webhook_insert(st, &again), 0);
    assert_int_equal(store_webhook_get(st, "alpha", &got), 0);
    assert_string_equal(got.destination, "https://new.example.com/");
    store_close(st);

    /* Everything survives a reopen. */
    st = open_store(f);
    assert_int_equal(store_webhook_get(st, "stripe", &got), 0);
    assert_int_equal(got.max_attempts, 25);
    store_close(st);
}

/* ---- replay ----------------------------------------------------------------- */

static void replay_insert_once(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct soldr_request r;
    make_request(f, &r, 1); /* binary body, X-Bin header, repeated headers */
    assert_int_equal(store_replay_insert(st, &r), 1);
    assert_int_equal(store_replay_insert(st, &r), 0);
    assert_stored(st, &r);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM requests"), 1);
    /* A different request with the same id is not stored over the first. */
    struct soldr_request other;
    make_request(f, &other, 2);
    memcpy(other.id, r.id, sizeof r.id);
    assert_int_equal(store_replay_insert(st, &other), 0);
    assert_stored(st, &r);
    req_free(&other);
    /* Unknown id. */
    assert_not_stored(st, "0190f2a4-1b2c-7d3e-8f40-0123456789ab");
    req_free(&r);

    /* Special bytes: empty body, invalid UTF-8 target, NUL in a header value. */
    make_request(f, &r, 2); /* i % 6 == 2: empty body */
    assert_int_equal(r.body.len, 0);
    static const char odd_target[] = "/\xff\x00\x01?a=\xe9";
    assert_int_equal(req_set(&r, &r.target, odd_target, sizeof odd_target - 1), 0);
    assert_int_equal(req_push_header(&r, "X-Nul", 5, "a\0b", 3), 0);
    assert_int_equal(store_replay_insert(st, &r), 1);
    assert_stored(st, &r);
    req_free(&r);
    store_close(st);
}

static void replay_batch_in_transaction(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct soldr_request reqs[50];
    assert_int_equal(store_begin(st), 0);
    for (int i = 0; i < 50; i++) {
        make_request(f, &reqs[i], i);
        assert_int_equal(store_replay_insert(st, &reqs[i]), 1);
    }
    assert_int_equal(store_replay_insert(st, &reqs[7]), 0); /* duplicate inside the batch */
    assert_int_equal(store_commit(st), 0);
    store_close(st);
    st = open_store(f);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM requests"), 50);
    for (int i = 0; i < 50; i++) {
        assert_stored(st, &reqs[i]);
        req_free(&reqs[i]);
    }
    /* New requests start pending and due at once. */
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM requests WHERE state = 'pending' "
                                      "AND next_attempt_at = received_at AND attempts = 0"),
                     50);
    store_close(st);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the failure tests log errors on purpose; keep the rest quiet */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(open_applies_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(open_refuses_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(open_fails_without_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(webhook_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_insert_once, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_batch_in_transaction, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
