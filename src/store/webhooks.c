/* Webhook rows: synchronous CRUD for the CLI (and, later, the mgmt API). */
#include <string.h>

#include "common/log.h"
#include "store/store_int.h"

void store_webhook_defaults(struct soldr_webhook *wh)
{
    memset(wh, 0, sizeof *wh);
    wh->active = 1;
    wh->max_attempts = 10;
    wh->timeout_ms = 30000;
    wh->backoff_base_ms = 30000;
    wh->backoff_cap_ms = 6 * 3600 * 1000;
    wh->max_concurrency = 4;
}

static int prepare(struct store *st, const char *sql, sqlite3_stmt **s)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
    return rc == SQLITE_OK ? 0 : store__fail(st, "store.webhook", rc);
}

static void bind_opt_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v[0])
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* Binds ?1..?12 in the order of WEBHOOK_SET below. */
static void bind_webhook(sqlite3_stmt *s, const struct soldr_webhook *wh)
{
    sqlite3_bind_text(s, 1, wh->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, wh->destination, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, wh->active ? 1 : 0);
    sqlite3_bind_int64(s, 4, wh->max_attempts);
    sqlite3_bind_int64(s, 5, wh->timeout_ms);
    sqlite3_bind_int64(s, 6, wh->backoff_base_ms);
    sqlite3_bind_int64(s, 7, wh->backoff_cap_ms);
    sqlite3_bind_int64(s, 8, wh->max_concurrency);
    bind_opt_text(s, 9, wh->signing_secret);
    bind_opt_text(s, 10, wh->alert_email);
    bind_opt_text(s, 11, wh->alert_url);
    sqlite3_bind_int64(s, 12, wh->updated_at);
}

int store_webhook_insert(struct store *st, struct soldr_webhook *wh)
{
    sqlite3_stmt *s;
    int rc = prepare(st,
                     "INSERT INTO webhooks (id, destination, active, max_attempts, timeout_ms, "
                     "backoff_base_ms, backoff_cap_ms, max_concurrency, signing_secret, "
                     "alert_email, alert_url, created_at, updated_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                     &s);
    if (rc)
        return rc;
    wh->created_at = wh->updated_at = time_now_ms();
    bind_webhook(s, wh);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return SOLDR_EEXIST;
    return store__fail(st, "store.webhook_insert", rc);
}

int store_webhook_update(struct store *st, struct soldr_webhook *wh)
{
    sqlite3_stmt *s;
    int rc = prepare(st,
                     "UPDATE webhooks SET destination = ?2, active = ?3, max_attempts = ?4, "
                     "timeout_ms = ?5, backoff_base_ms = ?6, backoff_cap_ms = ?7, "
                     "max_concurrency = ?8, signing_secret = ?9, alert_email = ?10, "
                     "alert_url = ?11, updated_at = ?12 WHERE id = ?1",
                     &s);
    if (rc)
        return rc;
    wh->updated_at = time_now_ms();
    bind_webhook(s, wh);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.webhook_update", rc);
    return sqlite3_changes(st->db) ? 0 : SOLDR_ENOTFOUND;
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", v ? (const char *)v : "");
}

void store__row_to_webhook(sqlite3_stmt *s, int c, struct soldr_webhook *wh)
{
    store_webhook_defaults(wh);
    copy_col(wh->id, sizeof wh->id, s, c + 0);
    copy_col(wh->destination, sizeof wh->destination, s, c + 1);
    wh->active = sqlite3_column_int(s, c + 2);
    wh->max_attempts = (uint32_t)sqlite3_column_int64(s, c + 3);
    wh->timeout_ms = (uint32_t)sqlite3_column_int64(s, c + 4);
    wh->backoff_base_ms = (uint32_t)sqlite3_column_int64(s, c + 5);
    wh->backoff_cap_ms = (uint32_t)sqlite3_column_int64(s, c + 6);
    wh->max_concurrency = (uint32_t)sqlite3_column_int64(s, c + 7);
    copy_col(wh->signing_secret, sizeof wh->signing_secret, s, c + 8);
    copy_col(wh->alert_email, sizeof wh->alert_email, s, c + 9);
    copy_col(wh->alert_url, sizeof wh->alert_url, s, c + 10);
    wh->alerted_at = sqlite3_column_int64(s, c + 11);
    wh->created_at = sqlite3_column_int64(s, c + 12);
    wh->updated_at = sqlite3_column_int64(s, c + 13);
}

int store_webhook_get(struct store *st, const char *id, struct soldr_webhook *out)
{
    sqlite3_stmt *s;
    int rc = prepare(st, "SELECT " STORE__WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    int ret = SOLDR_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        store__row_to_webhook(s, 0, out);
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        ret = store__fail(st, "store.webhook_get", rc);
    }
    sqlite3_finalize(s);
    return ret;
}

int store_webhook_list(struct store *st, int (*each)(void *arg, const struct soldr_webhook *wh),
                       void *arg)
{
    sqlite3_stmt *s;
    int rc = prepare(st, "SELECT " STORE__WEBHOOK_COLUMNS " FROM webhooks ORDER BY id", &s);
    if (rc)
        return rc;
    struct soldr_webhook wh;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        store__row_to_webhook(s, 0, &wh);
        if (each(arg, &wh)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : store__fail(st, "store.webhook_list", rc);
}

int store_webhook_delete(struct store *st, const char *id)
{
    sqlite3_stmt *s;
    int rc = prepare(st, "DELETE FROM webhooks WHERE id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.webhook_delete", rc);
    return sqlite3_changes(st->db) ? 0 : SOLDR_ENOTFOUND;
}
