/* Attempt outcomes and the alert outbox (see the invariants in deliveries.c). */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "store/delivery.h"
#include "store/store_int.h"

struct attempt_job {
    struct store__job job;
    struct store_attempt a;
    struct store_alert_defaults defs;
    int alerts; /* rows queued */
    store_attempt_cb cb;
    void *arg;
};

static const char *const outcome_state[] = {"delivered", "pending", "failed"};

static int step_done(struct store *st, sqlite3_stmt *s, const char *event)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : store__fail(st, event, rc);
}

static char *notice_json(const struct attempt_job *aj, const char *kind, long long now)
{
    const struct store_attempt *a = &aj->a;
    cJSON *o = cJSON_CreateObject();
    char type[32], msg[256];
    snprintf(type, sizeof type, "soldr.%s", kind);
    if (strcmp(kind, "alert") == 0)
        snprintf(msg, sizeof msg, "deliveries to webhook %s are failing: request %s gave up",
                 a->webhook, a->request_id);
    else
        snprintf(msg, sizeof msg, "deliveries to webhook %s recovered: request %s delivered",
                 a->webhook, a->request_id);
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "webhook", a->webhook);
    cJSON_AddStringToObject(o, "request_id", a->request_id);
    cJSON_AddNumberToObject(o, "at", (double)now);
    if (a->status)
        cJSON_AddNumberToObject(o, "last_status", a->status);
    else
        cJSON_AddNullToObject(o, "last_status");
    if (a->error)
        cJSON_AddStringToObject(o, "last_error", a->error);
    else
        cJSON_AddNullToObject(o, "last_error");
    cJSON_AddStringToObject(o, "message", msg);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int insert_alert(struct store *st, struct attempt_job *aj, const char *kind,
                        const char *channel, const char *target, const char *detail, long long now)
{
    sqlite3_stmt *s = store__stmt(
        st, STMT_ALERT_INSERT,
        "INSERT INTO alerts (webhook, kind, channel, target, request_id, detail, created_at, "
        "next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, aj->a.webhook, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, target, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, aj->a.request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, now);
    int rc = step_done(st, s, "store.alert_insert");
    if (!rc)
        aj->alerts++;
    return rc;
}

/* Queues one notice per configured channel of the webhook. */
static int queue_notice(struct store *st, struct attempt_job *aj, const char *kind, long long now)
{
    struct soldr_webhook wh;
    sqlite3_stmt *s = store__stmt(st, STMT_WEBHOOK_GET,
                                  "SELECT " STORE__WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, aj->a.webhook, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        store__row_to_webhook(s, 0, &wh);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : store__fail(st, "store.notice", rc);
    const char *email = wh.alert_email[0] ? wh.alert_email : aj->defs.email;
    const char *url = wh.alert_url[0] ? wh.alert_url : aj->defs.url;
    char *detail = notice_json(aj, kind, now);
    if (!detail)
        return UV_ENOMEM;
    rc = 0;
    if (aj->defs.smtp_enabled && email && email[0])
        rc = insert_alert(st, aj, kind, "email", email, detail, now);
    if (!rc && url && url[0])
        rc = insert_alert(st, aj, kind, "url", url, detail, now);
    if (!rc && aj->alerts == 0)
        log_warn("processor.no_alert_channel",
                 "webhook %s: %s, but no alert e-mail or URL is configured", aj->a.webhook,
                 strcmp(kind, "alert") == 0 ? "delivery failed" : "delivery recovered");
    cJSON_free(detail);
    return rc;
}

static int attempt_run(struct store *st, struct store__job *job)
{
    struct attempt_job *aj = (struct attempt_job *)job;
    const struct store_attempt *a = &aj->a;
    long long now = time_now_ms();
    sqlite3_stmt *s = store__stmt(
        st, STMT_ATTEMPT_INSERT,
        "INSERT INTO attempts (request_seq, started_at, duration_ms, status, response_headers, "
        "response_body, error, manual) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 "
        "WHERE EXISTS (SELECT 1 FROM requests WHERE seq = ?1)");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, a->seq);
    sqlite3_bind_int64(s, 2, a->started_at);
    sqlite3_bind_int64(s, 3, a->duration_ms);
    if (a->status)
        sqlite3_bind_int(s, 4, a->status);
    if (a->resp_headers)
        sqlite3_bind_text(s, 5, a->resp_headers, -1, SQLITE_STATIC);
    if (a->resp_body)
        sqlite3_bind_blob(s, 6, a->resp_body_len ? a->resp_body : "", (int)a->resp_body_len,
                          SQLITE_STATIC);
    if (a->error)
        sqlite3_bind_text(s, 7, a->error, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 8, a->manual);
    int rc = step_done(st, s, "store.attempt_insert");
    if (rc)
        return rc;

    s = store__stmt(st, STMT_REQ_OUTCOME,
                    "UPDATE requests SET state = ?2, attempts = attempts + 1, last_status = ?3, "
                    "next_attempt_at = ?4, lease_until = NULL, completed_at = ?5, manual = 0 "
                    "WHERE seq = ?1 AND state = 'sending'");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, a->seq);
    sqlite3_bind_text(s, 2, outcome_state[a->outcome], -1, SQLITE_STATIC);
    if (a->status)
        sqlite3_bind_int(s, 3, a->status);
    sqlite3_bind_int64(s, 4, a->outcome == STORE_OUT_RETRY ? a->next_attempt_at : now);
    if (a->outcome != STORE_OUT_RETRY)
        sqlite3_bind_int64(s, 5, now);
    if ((rc = step_done(st, s, "store.outcome")))
        return rc;
    if (sqlite3_changes(st->db) == 0)
        return 0; /* note 2: not ours any more (purged, or changed meanwhile) */
    static const int field[] = {RU_DELIVERED, RU_RETRIED, RU_FAILED};
    store__count(st, a->webhook, now, field[a->outcome], 1);
    if (a->outcome == STORE_OUT_RETRY)
        return 0;

    int raise = a->outcome == STORE_OUT_FAILED;
    s = raise ? store__stmt(
                    st, STMT_ALERT_SET,
                    "UPDATE webhooks SET alerted_at = ?2 WHERE id = ?1 AND alerted_at IS NULL")
              : store__stmt(st, STMT_ALERT_CLEAR,
                            "UPDATE webhooks SET alerted_at = NULL WHERE id = ?1 AND "
                            "alerted_at IS NOT NULL");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, a->webhook, -1, SQLITE_STATIC);
    if (raise)
        sqlite3_bind_int64(s, 2, now);
    if ((rc = step_done(st, s, "store.alert_state")))
        return rc;
    if (sqlite3_changes(st->db) == 0)
        return 0; /* note 3: already in (or out of) the incident */
    return queue_notice(st, aj, raise ? "alert" : "resolved", now);
}

static void attempt_failed(struct store *st, struct store__job *job)
{
    (void)st;
    job->status = SOLDR_ESTORE;
}

static void attempt_done(struct store__job *job)
{
    struct attempt_job *aj = (struct attempt_job *)job;
    aj->cb(aj->arg, job->status < 0 ? job->status : aj->alerts);
    free(aj);
}

int store_record_attempt(struct store *st, const struct store_attempt *a,
                         const struct store_alert_defaults *defs, store_attempt_cb cb, void *arg)
{
    struct attempt_job *aj = calloc(1, sizeof *aj);
    if (!aj)
        return UV_ENOMEM;
    aj->a = *a;
    aj->defs = *defs;
    aj->cb = cb;
    aj->arg = arg;
    aj->job.run = attempt_run;
    aj->job.failed = attempt_failed;
    aj->job.done = attempt_done;
    aj->job.bytes = a->resp_body_len;
    int rc = store__submit(st, &aj->job);
    if (rc)
        free(aj);
    return rc;
}

/* ---- alert outbox ----------------------------------------------------------- */

void store_alert_free(struct store_alert *a)
{
    if (!a)
        return;
    free(a->target);
    free(a->detail);
    free(a);
}

struct alerts_job {
    struct store__job job;
    size_t max;
    struct store_alert **items;
    size_t n;
    long long next_due;
    store_alerts_cb cb;
    void *arg;
};

static int alerts_run(struct store *st, struct store__job *job)
{
    struct alerts_job *aj = (struct alerts_job *)job;
    long long now = time_now_ms();
    sqlite3_stmt *s = store__stmt(st, STMT_ALERTS_DUE,
                                  "SELECT id, webhook, kind, channel, target, detail, attempts "
                                  "FROM alerts WHERE sent_at IS NULL AND next_attempt_at <= ?1 "
                                  "ORDER BY next_attempt_at LIMIT ?2");
    if (!s)
        return SOLDR_ESTORE;
    aj->items = calloc(aj->max, sizeof *aj->items);
    if (!aj->items)
        return UV_ENOMEM;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, (long long)aj->max);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && aj->n < aj->max) {
        struct store_alert *a = calloc(1, sizeof *a);
        if (!a)
            break;
        a->id = sqlite3_column_int64(s, 0);
        snprintf(a->webhook, sizeof a->webhook, "%s", (const char *)sqlite3_column_text(s, 1));
        snprintf(a->kind, sizeof a->kind, "%s", (const char *)sqlite3_column_text(s, 2));
        snprintf(a->channel, sizeof a->channel, "%s", (const char *)sqlite3_column_text(s, 3));
        a->target = strdup((const char *)sqlite3_column_text(s, 4));
        a->detail = strdup((const char *)sqlite3_column_text(s, 5));
        a->attempts = (uint32_t)sqlite3_column_int64(s, 6);
        if (!a->target || !a->detail) {
            store_alert_free(a);
            break;
        }
        aj->items[aj->n++] = a;
    }
    sqlite3_reset(s);
    s = store__stmt(st, STMT_ALERTS_NEXT,
                    "SELECT MIN(next_attempt_at) FROM alerts WHERE sent_at IS NULL AND "
                    "next_attempt_at > ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, now);
    if ((rc = sqlite3_step(s)) == SQLITE_ROW)
        aj->next_due = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : store__fail(st, "store.alerts_due", rc);
}

static void alerts_failed(struct store *st, struct store__job *job)
{
    (void)st;
    struct alerts_job *aj = (struct alerts_job *)job;
    for (size_t i = 0; i < aj->n; i++)
        store_alert_free(aj->items[i]);
    aj->n = 0;
    job->status = SOLDR_ESTORE;
}

static void alerts_done(struct store__job *job)
{
    struct alerts_job *aj = (struct alerts_job *)job;
    aj->cb(aj->arg, job->status < 0 ? job->status : 0, aj->items, aj->n, aj->next_due);
    free(aj);
}

int store_alerts_due(struct store *st, size_t max, store_alerts_cb cb, void *arg)
{
    struct alerts_job *aj = calloc(1, sizeof *aj);
    if (!aj)
        return UV_ENOMEM;
    aj->max = max ? max : 1;
    aj->cb = cb;
    aj->arg = arg;
    aj->job.run = alerts_run;
    aj->job.failed = alerts_failed;
    aj->job.done = alerts_done;
    int rc = store__submit(st, &aj->job);
    if (rc)
        free(aj);
    return rc;
}

struct alert_result_job {
    struct store__job job;
    long long id, next;
    char *error;
    void (*cb)(void *arg, int status);
    void *arg;
};

static int alert_result_run(struct store *st, struct store__job *job)
{
    struct alert_result_job *rj = (struct alert_result_job *)job;
    sqlite3_stmt *s =
        rj->error ? store__stmt(st, STMT_ALERT_RETRY,
                                "UPDATE alerts SET attempts = attempts + 1, last_error = ?2, "
                                "next_attempt_at = ?3 WHERE id = ?1")
                  : store__stmt(st, STMT_ALERT_SENT,
                                "UPDATE alerts SET attempts = attempts + 1, last_error = NULL, "
                                "sent_at = ?3 WHERE id = ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, rj->id);
    if (rj->error)
        sqlite3_bind_text(s, 2, rj->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, rj->error ? rj->next : time_now_ms());
    return step_done(st, s, "store.alert_result");
}

static void alert_result_failed(struct store *st, struct store__job *job)
{
    (void)st;
    job->status = SOLDR_ESTORE;
}

static void alert_result_done(struct store__job *job)
{
    struct alert_result_job *rj = (struct alert_result_job *)job;
    if (rj->cb)
        rj->cb(rj->arg, job->status < 0 ? job->status : 0);
    free(rj->error);
    free(rj);
}

int store_alert_result(struct store *st, long long id, const char *error, long long next,
                       void (*cb)(void *arg, int status), void *arg)
{
    struct alert_result_job *rj = calloc(1, sizeof *rj);
    if (!rj || (error && !(rj->error = strdup(error)))) {
        free(rj);
        return UV_ENOMEM;
    }
    rj->id = id;
    rj->next = next;
    rj->cb = cb;
    rj->arg = arg;
    rj->job.run = alert_result_run;
    rj->job.failed = alert_result_failed;
    rj->job.done = alert_result_done;
    int rc = store__submit(st, &rj->job);
    if (rc) {
        free(rj->error);
        free(rj);
    }
    return rc;
}
