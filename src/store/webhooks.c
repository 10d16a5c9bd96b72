/* Webhook rows: synchronous CRUD for the CLI (and, later, the mgmt API). */
#include <string.h>

#include "common/log.h"
#include "store/store_int.h"

void store_webhook_defaults(struct soldr_webhook *wh)
{
    memset(wh, 0, sizeof *wh);
    wh->active = 1;
    wh->max_attempts = 10;
}

static int prepare(struct store *st, const char *sql, sqlite3_stmt **s)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
    return rc == SQLITE_OK ? 0 : store__fail(st, "store.webhook", rc);
}

int store_webhook_insert(struct store *st, struct soldr_webhook *wh)
{
    sqlite3_stmt *s;
    int rc = prepare(st,
                     "INSERT INTO webhooks (id, destination, active, max_attempts, created_at, "
                     "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                     &s);
    if (rc)
        return rc;
    wh->created_at = wh->updated_at = time_now_ms();
    sqlite3_bind_text(s, 1, wh->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, wh->destination, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, wh->active ? 1 : 0);
    sqlite3_bind_int64(s, 4, wh->max_attempts);
    sqlite3_bind_int64(s, 5, wh->created_at);
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
                     "updated_at = ?5 WHERE id = ?1",
                     &s);
    if (rc)
        return rc;
    wh->updated_at = time_now_ms();
    sqlite3_bind_text(s, 1, wh->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, wh->destination, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, wh->active ? 1 : 0);
    sqlite3_bind_int64(s, 4, wh->max_attempts);
    sqlite3_bind_int64(s, 5, wh->updated_at);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.webhook_update", rc);
    return sqlite3_changes(st->db) ? 0 : SOLDR_ENOTFOUND;
}

static void row_to_webhook(sqlite3_stmt *s, struct soldr_webhook *wh)
{
    store_webhook_defaults(wh);
    snprintf(wh->id, sizeof wh->id, "%s", (const char *)sqlite3_column_text(s, 0));
    snprintf(wh->destination, sizeof wh->destination, "%s",
             (const char *)sqlite3_column_text(s, 1));
    wh->active = sqlite3_column_int(s, 2);
    wh->max_attempts = (uint32_t)sqlite3_column_int64(s, 3);
    wh->created_at = sqlite3_column_int64(s, 4);
    wh->updated_at = sqlite3_column_int64(s, 5);
}

#define WEBHOOK_COLUMNS "id, destination, active, max_attempts, created_at, updated_at"

int store_webhook_get(struct store *st, const char *id, struct soldr_webhook *out)
{
    sqlite3_stmt *s;
    int rc = prepare(st, "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1", &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    int ret = SOLDR_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        row_to_webhook(s, out);
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
    int rc = prepare(st, "SELECT " WEBHOOK_COLUMNS " FROM webhooks ORDER BY id", &s);
    if (rc)
        return rc;
    struct soldr_webhook wh;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        row_to_webhook(s, &wh);
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
