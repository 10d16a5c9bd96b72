/* The store: opening, schema migrations, and the synchronous operations the
 * CLI uses. The writer thread (group commit) is in writer.c. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/access.h"
#include "store/migrations.h"
#include "store/store_int.h"

int store__fail(struct store *st, const char *event, int rc)
{
    log_error(event, "sqlite error %d (%s): %s", rc, sqlite3_errstr(rc),
              st->db ? sqlite3_errmsg(st->db) : "no connection");
    return SOLDR_ESTORE;
}

int store__exec(struct store *st, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        log_error("store.exec", "sqlite error %d: %s", rc, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return SOLDR_ESTORE;
    }
    return 0;
}

int store_schema_version(void)
{
    int v = 0;
    for (const struct store__migration *m = store__migrations; m->version; m++)
        v = m->version;
    return v;
}

static int user_version(struct store *st, int *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return store__fail(st, "store.migrate", rc);
    rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : store__fail(st, "store.migrate", rc);
}

/* Applies every migration newer than the file, each in its own transaction
 * together with its user_version bump, so a crash never leaves a half step. */
static int migrate(struct store *st)
{
    int have, rc;
    if ((rc = user_version(st, &have)))
        return rc;
    int known = store_schema_version();
    if (have > known) {
        log_error("store.schema_newer",
                  "database %s has schema version %d but this soldr knows only up to %d: "
                  "run a newer soldr (downgrades are not supported)",
                  st->opts.path, have, known);
        return SOLDR_ESCHEMA;
    }
    for (const struct store__migration *m = store__migrations; m->version; m++) {
        if (m->version <= have)
            continue;
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", m->version);
        if ((rc = store__exec(st, "BEGIN IMMEDIATE")))
            return rc;
        if ((rc = store__exec(st, m->sql)) || (rc = store__exec(st, bump))) {
            store__exec(st, "ROLLBACK");
            log_error("store.migrate", "migration %s failed", m->name);
            return rc;
        }
        if ((rc = store__exec(st, "COMMIT")))
            return rc;
        log_info("store.migrate", "applied migration %s", m->name);
    }
    return 0;
}

static const char insert_sql[] =
    "INSERT INTO requests (id, webhook, received_at, peer, method, target, next_attempt_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?3)";
static const char insert_body_sql[] =
    "INSERT INTO request_bodies (seq, headers, body) VALUES (?1, ?2, ?3)";

int store_open(struct store **out, const struct store_opts *opts)
{
    struct store *st = calloc(1, sizeof *st);
    if (!st)
        return UV_ENOMEM;
    st->opts = *opts;
    metrics_init(&st->metrics);
    pthread_mutex_init(&st->readers_mu, NULL);
    int rc =
        sqlite3_open_v2(opts->path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("store.open", "cannot open database %s: %s", opts->path, sqlite3_errstr(rc));
        store_close(st);
        return SOLDR_ESTORE;
    }
    sqlite3_busy_timeout(st->db,
                         (int)(opts->busy_timeout_ms > 600000 ? 600000 : opts->busy_timeout_ms));
    sqlite3_extended_result_codes(st->db, 1);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON; "
             "PRAGMA journal_size_limit=67108864;",
             opts->durability == SOLDR_DURABILITY_NORMAL ? "NORMAL" : "FULL");
    if ((rc = store__exec(st, pragmas)) || (rc = migrate(st))) {
        store_close(st);
        return rc;
    }
    rc = sqlite3_prepare_v3(st->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &st->insert_req,
                            NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(st->db, insert_body_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &st->insert_body, NULL);
    if (rc != SQLITE_OK) {
        store__fail(st, "store.prepare", rc);
        store_close(st);
        return SOLDR_ESTORE;
    }
    *out = st;
    return 0;
}

sqlite3_stmt *store__stmt(struct store *st, int idx, const char *sql)
{
    sqlite3_stmt *s = st->cache[idx];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        store__fail(st, "store.prepare", rc);
        return NULL;
    }
    return st->cache[idx] = s;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    store_readers_close(st);
    for (int i = 0; i < STORE__NSTMT; i++)
        sqlite3_finalize(st->cache[i]);
    sqlite3_finalize(st->insert_req);
    sqlite3_finalize(st->insert_body);
    free(st->ru);
    if (st->db && sqlite3_close(st->db) != SQLITE_OK)
        log_error("store.close", "database did not close cleanly: %s", sqlite3_errmsg(st->db));
    free(st);
}

int store__insert_request(struct store *st, sqlite3_stmt *s, const struct soldr_request *r)
{
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->webhook, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, r->received_at);
    sqlite3_bind_text(s, 4, r->peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, req_str(r, r->method), (int)r->method.len, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, req_str(r, r->target), (int)r->target.len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE)
        return rc;

    struct buf hdr;
    buf_init(&hdr, (size_t)-1);
    if (req_headers_block(r, &hdr))
        return SQLITE_NOMEM;
    sqlite3_stmt *b = st->insert_body;
    sqlite3_bind_int64(b, 1, sqlite3_last_insert_rowid(st->db));
    sqlite3_bind_text(b, 2, hdr.data ? hdr.data : "", (int)hdr.len, SQLITE_STATIC);
    /* A NULL pointer would bind SQL NULL: an empty body must stay an empty blob. */
    sqlite3_bind_blob(b, 3, r->body.len ? req_str(r, r->body) : "", (int)r->body.len,
                      SQLITE_STATIC);
    rc = sqlite3_step(b);
    sqlite3_reset(b);
    sqlite3_clear_bindings(b);
    buf_free(&hdr);
    if (rc == SQLITE_DONE)
        store__count(st, r->webhook, r->received_at, RU_RECEIVED, 1);
    return rc;
}

int store__load_body(struct store *st, long long seq, struct soldr_request *r)
{
    sqlite3_stmt *s =
        store__stmt(st, STMT_BODY_GET, "SELECT headers, body FROM request_bodies WHERE seq = ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, seq);
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW) {
        ret = req_headers_parse(r, (const char *)sqlite3_column_text(s, 0),
                                (size_t)sqlite3_column_bytes(s, 0));
        if (!ret)
            ret =
                req_set(r, &r->body, sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1));
    } else {
        ret = rc == SQLITE_DONE ? SOLDR_ENOTFOUND : store__fail(st, "store.load_body", rc);
    }
    sqlite3_reset(s);
    return ret;
}

/* ---- rollups ------------------------------------------------------------- */

void store__count(struct store *st, const char *webhook, long long at_ms, int field, long long n)
{
    long long day = at_ms / 86400000;
    for (size_t i = 0; i < st->nru; i++) {
        if (st->ru[i].day == day && strcmp(st->ru[i].webhook, webhook) == 0) {
            st->ru[i].n[field] += n;
            return;
        }
    }
    if (st->nru == st->ru_cap) {
        size_t cap = st->ru_cap ? st->ru_cap * 2 : 16;
        struct store__rollup *p = realloc(st->ru, cap * sizeof *p);
        if (!p) {
            log_error("store.rollup", "out of memory: a counter update is lost");
            return;
        }
        st->ru = p;
        st->ru_cap = cap;
    }
    struct store__rollup *r = &st->ru[st->nru++];
    memset(r, 0, sizeof *r);
    snprintf(r->webhook, sizeof r->webhook, "%s", webhook);
    r->day = day;
    r->n[field] = n;
}

int store__flush_counts(struct store *st)
{
    int ret = 0;
    for (size_t i = 0; i < st->nru && !ret; i++) {
        sqlite3_stmt *s = store__stmt(
            st, STMT_ROLLUP,
            "INSERT INTO rollups (webhook, day, received, delivered, failed, retried, orphaned, "
            "purged, purged_undelivered) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
            "ON CONFLICT (webhook, day) DO UPDATE SET received = received + excluded.received, "
            "delivered = delivered + excluded.delivered, failed = failed + excluded.failed, "
            "retried = retried + excluded.retried, orphaned = orphaned + excluded.orphaned, "
            "purged = purged + excluded.purged, "
            "purged_undelivered = purged_undelivered + excluded.purged_undelivered");
        if (!s)
            return SOLDR_ESTORE;
        sqlite3_bind_text(s, 1, st->ru[i].webhook, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, st->ru[i].day);
        for (int f = 0; f < RU_NFIELDS; f++)
            sqlite3_bind_int64(s, 3 + f, st->ru[i].n[f]);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            ret = store__fail(st, "store.rollup", rc);
    }
    st->nru = 0;
    return ret;
}

void store__drop_counts(struct store *st)
{
    st->nru = 0;
}

int store_begin(struct store *st)
{
    return store__exec(st, "BEGIN IMMEDIATE");
}

int store_commit(struct store *st)
{
    int rc = store__flush_counts(st);
    if (!rc)
        rc = store__exec(st, "COMMIT");
    if (rc) {
        store__drop_counts(st);
        store__exec(st, "ROLLBACK");
    }
    return rc;
}

int store_replay_insert(struct store *st, const struct soldr_request *r)
{
    int rc = store__insert_request(st, st->insert_req, r);
    if (rc == SQLITE_DONE)
        return 1;
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return 0;
    return store__fail(st, "store.replay_insert", rc);
}

int store_request_get(struct store *st, const char *id, struct soldr_request *r)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT r.webhook, r.received_at, r.peer, r.method, r.target, "
                                "b.headers, b.body FROM requests r "
                                "JOIN request_bodies b ON b.seq = r.seq WHERE r.id = ?1",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return store__fail(st, "store.request_get", rc);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    int ret = SOLDR_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        snprintf(r->id, sizeof r->id, "%s", id);
        snprintf(r->webhook, sizeof r->webhook, "%s", (const char *)sqlite3_column_text(s, 0));
        r->received_at = sqlite3_column_int64(s, 1);
        snprintf(r->peer, sizeof r->peer, "%s", (const char *)sqlite3_column_text(s, 2));
        ret = req_set(r, &r->method, sqlite3_column_text(s, 3), (size_t)sqlite3_column_bytes(s, 3));
        if (!ret)
            ret = req_set(r, &r->target, sqlite3_column_text(s, 4),
                          (size_t)sqlite3_column_bytes(s, 4));
        if (!ret)
            ret = req_headers_parse(r, (const char *)sqlite3_column_text(s, 5),
                                    (size_t)sqlite3_column_bytes(s, 5));
        if (!ret)
            ret =
                req_set(r, &r->body, sqlite3_column_blob(s, 6), (size_t)sqlite3_column_bytes(s, 6));
    } else if (rc != SQLITE_DONE) {
        ret = store__fail(st, "store.request_get", rc);
    }
    sqlite3_finalize(s);
    return ret;
}

struct soldr_metrics *store_metrics(struct store *st)
{
    return &st->metrics;
}
