/* Edits and resends of requests (requests_api.h): the write half, run on the
 * writer thread through store_call. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/requests_api.h"
#include "store/store_int.h"

static int seq_of(struct store *st, const char *id, long long *seq, int *sending)
{
    sqlite3_stmt *s = store__stmt(st, STMT_SEQ_OF, "SELECT seq, state FROM requests WHERE id = ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        if (sending)
            *sending = strcmp((const char *)sqlite3_column_text(s, 1), "sending") == 0;
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? SOLDR_ENOTFOUND : store__fail(st, "store.seq_of", rc);
}

int store__load_current(struct store *st, long long seq, struct soldr_request *r, int *edited)
{
    sqlite3_stmt *s = store__stmt(st, STMT_EDIT_GET,
                                  "SELECT method, target, headers, body FROM request_edits "
                                  "WHERE seq = ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, seq);
    int rc = sqlite3_step(s), ret = 0;
    if (rc == SQLITE_ROW) {
        r->method.len = r->target.len = 0;
        ret = req_set(r, &r->method, sqlite3_column_text(s, 0), (size_t)sqlite3_column_bytes(s, 0));
        if (!ret)
            ret = req_set(r, &r->target, sqlite3_column_text(s, 1),
                          (size_t)sqlite3_column_bytes(s, 1));
        if (!ret)
            ret = req_headers_parse(r, (const char *)sqlite3_column_text(s, 2),
                                    (size_t)sqlite3_column_bytes(s, 2));
        if (!ret)
            ret =
                req_set(r, &r->body, sqlite3_column_blob(s, 3), (size_t)sqlite3_column_bytes(s, 3));
    }
    sqlite3_reset(s);
    if (edited)
        *edited = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        return ret;
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.edit_get", rc);
    return store__load_body(st, seq, r); /* method and target: the caller's, from requests */
}

int store_request_current(struct store *st, const char *id, struct soldr_request *r)
{
    sqlite3_stmt *s = store__stmt(st, STMT_REQ_HEAD,
                                  "SELECT seq, webhook, received_at, peer, method, target "
                                  "FROM requests WHERE id = ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s), ret = SOLDR_ENOTFOUND;
    long long seq = 0;
    if (rc == SQLITE_ROW) {
        seq = sqlite3_column_int64(s, 0);
        snprintf(r->id, sizeof r->id, "%s", id);
        snprintf(r->webhook, sizeof r->webhook, "%s", (const char *)sqlite3_column_text(s, 1));
        r->received_at = sqlite3_column_int64(s, 2);
        snprintf(r->peer, sizeof r->peer, "%s", (const char *)sqlite3_column_text(s, 3));
        ret = req_set(r, &r->method, sqlite3_column_text(s, 4), (size_t)sqlite3_column_bytes(s, 4));
        if (!ret)
            ret = req_set(r, &r->target, sqlite3_column_text(s, 5),
                          (size_t)sqlite3_column_bytes(s, 5));
    } else if (rc != SQLITE_DONE) {
        ret = store__fail(st, "store.request_current", rc);
    }
    sqlite3_reset(s);
    return ret ? ret : store__load_current(st, seq, r, NULL);
}

int store_request_edit(struct store *st, const char *id, const struct soldr_request *r)
{
    long long seq = 0;
    int rc = seq_of(st, id, &seq, NULL);
    if (rc)
        return rc;
    struct buf hdr;
    buf_init(&hdr, (size_t)-1);
    if (req_headers_block(r, &hdr))
        return UV_ENOMEM;
    sqlite3_stmt *s = store__stmt(
        st, STMT_EDIT_PUT,
        "INSERT INTO request_edits (seq, method, target, headers, body, edited_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (seq) DO UPDATE SET method = excluded.method, "
        "target = excluded.target, headers = excluded.headers, body = excluded.body, "
        "edited_at = excluded.edited_at");
    if (!s) {
        buf_free(&hdr);
        return SOLDR_ESTORE;
    }
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_text(s, 2, req_str(r, r->method), (int)r->method.len, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, req_str(r, r->target), (int)r->target.len, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, hdr.data ? hdr.data : "", (int)hdr.len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, r->body.len ? req_str(r, r->body) : "", (int)r->body.len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, time_now_ms());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    buf_free(&hdr);
    return rc == SQLITE_DONE ? 0 : store__fail(st, "store.edit", rc);
}

/* The SET clause of a resend: due now, the next attempt a human's. */
#define RESEND_SET                                                                                 \
    "UPDATE requests SET state = 'pending', next_attempt_at = ?1, manual = 1, "                    \
    "resend_requested_at = ?1, completed_at = NULL, lease_until = NULL "

int store_request_resend(struct store *st, const char *id)
{
    long long seq = 0;
    int sending = 0;
    int rc = seq_of(st, id, &seq, &sending);
    if (rc)
        return rc;
    if (sending)
        return SOLDR_EBUSY; /* invariant 1 of deliveries.c: never two at once */
    sqlite3_stmt *s =
        store__stmt(st, STMT_RESEND, RESEND_SET "WHERE seq = ?2 AND state != 'sending'");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, time_now_ms());
    sqlite3_bind_int64(s, 2, seq);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.resend", rc);
    atomic_store(&st->wake, 1);
    return 0;
}

long long store_requests_resend(struct store *st, const struct store_filter *f)
{
    /* Built from fixed fragments only; every value is bound. */
    char sql[1024];
    snprintf(sql, sizeof sql, RESEND_SET "WHERE state != 'sending'%s%s%s%s%s%s",
             f->webhook ? " AND webhook = ?2" : "", f->state ? " AND state = ?3" : "",
             f->from ? " AND received_at >= ?4" : "", f->to ? " AND received_at < ?5" : "",
             f->status ? " AND last_status = ?6" : "", f->q ? " AND instr(target, ?7) > 0" : "");
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return store__fail(st, "store.bulk_resend", rc);
    sqlite3_bind_int64(s, 1, time_now_ms());
    if (f->webhook)
        sqlite3_bind_text(s, 2, f->webhook, -1, SQLITE_STATIC);
    if (f->state)
        sqlite3_bind_text(s, 3, f->state, -1, SQLITE_STATIC);
    if (f->from)
        sqlite3_bind_int64(s, 4, f->from);
    if (f->to)
        sqlite3_bind_int64(s, 5, f->to);
    if (f->status)
        sqlite3_bind_int(s, 6, f->status);
    if (f->q)
        sqlite3_bind_text(s, 7, f->q, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.bulk_resend", rc);
    long long n = sqlite3_changes(st->db);
    if (n)
        atomic_store(&st->wake, 1);
    return n;
}
