/* Webhook rows: synchronous CRUD for the CLI (and, later, the mgmt API). */
#include <string.h>

#include "common/log.h"
#include "store/access.h"
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

static int valid_url(const char *u)
{
    size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
    if (!skip || u[skip] == '\0' || u[skip] == '/')
        return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

static int valid_secret(const char *s)
{
    if (!*s)
        return 1; /* empty: unsigned */
    if (strncmp(s, "whsec_", 6) != 0 || strlen(s) < 6 + 24)
        return 0;
    return strspn(s + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
           strlen(s + 6);
}

int store_webhook_validate(const struct soldr_webhook *wh, const char **field, const char **why)
{
    *field = NULL;
    if (!route_label_valid(wh->id))
        *field = "id", *why = "must be 1 to 63 of a-z, 0-9 and '-'";
    else if (!valid_url(wh->destination))
        *field = "destination", *why = "must be an http:// or https:// URL";
    else if (wh->max_attempts < 1 || wh->max_attempts > 1000)
        *field = "max_attempts", *why = "must be 1..1000";
    else if (wh->max_concurrency < 1 || wh->max_concurrency > 1000)
        *field = "max_concurrency", *why = "must be 1..1000";
    else if (wh->timeout_ms < 100 || wh->timeout_ms > 600000)
        *field = "timeout_ms", *why = "must be 100..600000";
    else if (wh->backoff_base_ms < 10 || wh->backoff_base_ms > 86400000)
        *field = "backoff_base_ms", *why = "must be 10..86400000";
    else if (wh->backoff_cap_ms < wh->backoff_base_ms || wh->backoff_cap_ms > 7 * 86400000u)
        *field = "backoff_cap_ms", *why = "must be backoff_base_ms..604800000";
    else if (!valid_secret(wh->signing_secret))
        *field = "signing_secret", *why = "must be whsec_ and base64 (18+ bytes of key), or empty";
    else if (wh->alert_url[0] && !valid_url(wh->alert_url))
        *field = "alert_url", *why = "must be an http:// or https:// URL";
    else if (wh->alert_email[0] &&
             (!strchr(wh->alert_email, '@') || strpbrk(wh->alert_email, " <>\r\n,")))
        *field = "alert_email", *why = "must be an e-mail address";
    return *field ? SOLDR_EMALFORMED : 0;
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

static int webhook_get(sqlite3 *db, const char *id, struct soldr_webhook *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "SELECT " STORE__WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1",
                                -1, &s, NULL);
    if (rc != SQLITE_OK) {
        log_error("store.webhook_get", "sqlite error %d: %s", rc, sqlite3_errmsg(db));
        return SOLDR_ESTORE;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    int ret = SOLDR_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        store__row_to_webhook(s, 0, out);
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        log_error("store.webhook_get", "sqlite error %d: %s", rc, sqlite3_errmsg(db));
        ret = SOLDR_ESTORE;
    }
    sqlite3_finalize(s);
    return ret;
}

static int webhook_list(sqlite3 *db, int (*each)(void *arg, const struct soldr_webhook *wh),
                        void *arg)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "SELECT " STORE__WEBHOOK_COLUMNS " FROM webhooks ORDER BY id",
                                -1, &s, NULL);
    if (rc != SQLITE_OK) {
        log_error("store.webhook_list", "sqlite error %d: %s", rc, sqlite3_errmsg(db));
        return SOLDR_ESTORE;
    }
    struct soldr_webhook wh;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        store__row_to_webhook(s, 0, &wh);
        if (each(arg, &wh)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        log_error("store.webhook_list", "sqlite error %d: %s", rc, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : SOLDR_ESTORE;
}

int store_webhook_get(struct store *st, const char *id, struct soldr_webhook *out)
{
    return webhook_get(st->db, id, out);
}

int store_webhook_list(struct store *st, int (*each)(void *arg, const struct soldr_webhook *wh),
                       void *arg)
{
    return webhook_list(st->db, each, arg);
}

int store_read_webhook(struct store_reader *r, const char *id, struct soldr_webhook *out)
{
    return webhook_get(r->db, id, out);
}

int store_read_webhooks(struct store_reader *r,
                        int (*each)(void *arg, const struct soldr_webhook *wh), void *arg)
{
    return webhook_list(r->db, each, arg);
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
