/* Delivery state in the database: claims, attempt outcomes, crash recovery.
 *
 * Invariants (DESIGN.md, "Delivery state machine"):
 *  1. Only a claim moves a request to 'sending', in one UPDATE on the writer
 *     thread, so no two deliveries of one request overlap.
 *  2. An outcome applies only to a request still 'sending' (WHERE state =
 *     'sending'): a stale or duplicate outcome changes nothing.
 *  3. A webhook enters the alerted state only on a transition from not
 *     alerted (alerted_at IS NULL), and leaves it only on a delivery while
 *     alerted, so one incident queues one alert and one resolved notice.
 *  4. Alert rows are written in the same transaction as the state change
 *     that raised them: a crash cannot lose or duplicate a notice.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "store/delivery.h"
#include "store/store_int.h"

#define LABELS_PER_CLAIM 1000 /* bound on one claim's work; `more` asks for another */
#define ORPHAN_CHUNK     1000
#define LEASE_MS         (15 * 60 * 1000)

void store_delivery_free(struct store_delivery *d)
{
    if (!d)
        return;
    req_free(&d->req);
    free(d);
}

/* ---- claim ------------------------------------------------------------------ */

struct claim_job {
    struct store__job job;
    struct store *st;
    size_t max_total;
    struct store_busy *busy;
    size_t nbusy;
    struct store_delivery **items;
    size_t n, cap;
    long long next_due;
    int more;
    store_claim_cb cb;
    void *arg;
};

static uint32_t in_flight(const struct claim_job *cj, const char *label)
{
    for (size_t i = 0; i < cj->nbusy; i++)
        if (strcmp(cj->busy[i].label, label) == 0)
            return cj->busy[i].in_flight;
    return 0;
}

static int get_webhook(struct store *st, const char *label, struct soldr_webhook *wh)
{
    sqlite3_stmt *s = store__stmt(st, STMT_WEBHOOK_GET,
                                  "SELECT " STORE__WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, label, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        store__row_to_webhook(s, 0, wh);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? SOLDR_ENOTFOUND : store__fail(st, "store.claim", rc);
}

static int orphan(struct store *st, struct claim_job *cj, const char *label, long long now)
{
    sqlite3_stmt *s = store__stmt(
        st, STMT_ORPHAN,
        "UPDATE requests SET state = 'orphaned', completed_at = ?2, lease_until = NULL "
        "WHERE seq IN (SELECT seq FROM requests WHERE webhook = ?1 AND state = 'pending' "
        "LIMIT 1000)");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, label, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, now);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.orphan", rc);
    int n = sqlite3_changes(st->db);
    if (n >= ORPHAN_CHUNK)
        cj->more = 1;
    store__count(st, label, now, RU_ORPHANED, n);
    if (n > 0)
        log_info("processor.orphaned", "%d requests of webhook '%s' orphaned (no active webhook)",
                 n, label);
    return 0;
}

static int add_item(struct claim_job *cj, sqlite3_stmt *s, const struct soldr_webhook *wh)
{
    if (cj->n == cj->cap) {
        size_t cap = cj->cap ? cj->cap * 2 : 16;
        struct store_delivery **p = realloc(cj->items, cap * sizeof *p);
        if (!p)
            return UV_ENOMEM;
        cj->items = p;
        cj->cap = cap;
    }
    struct store_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return UV_ENOMEM;
    struct soldr_request *r = &d->req;
    req_init(r, (size_t)-1);
    d->seq = sqlite3_column_int64(s, 0);
    snprintf(r->id, sizeof r->id, "%s", (const char *)sqlite3_column_text(s, 1));
    snprintf(r->webhook, sizeof r->webhook, "%s", wh->id);
    r->received_at = sqlite3_column_int64(s, 2);
    snprintf(r->peer, sizeof r->peer, "%s", (const char *)sqlite3_column_text(s, 3));
    d->attempts = (uint32_t)sqlite3_column_int64(s, 6);
    d->wh = *wh;
    int rc = req_set(r, &r->method, sqlite3_column_text(s, 4), (size_t)sqlite3_column_bytes(s, 4));
    if (!rc)
        rc = req_set(r, &r->target, sqlite3_column_text(s, 5), (size_t)sqlite3_column_bytes(s, 5));
    d->manual = sqlite3_column_int(s, 7);
    if (!rc)
        rc = store__load_current(cj->st, d->seq, r, NULL); /* an admin's edit wins */
    if (rc) {
        store_delivery_free(d);
        return rc;
    }
    cj->items[cj->n++] = d;
    return 0;
}

static int claim_webhook(struct store *st, struct claim_job *cj, const struct soldr_webhook *wh,
                         uint32_t free_slots, long long now)
{
    sqlite3_stmt *s =
        store__stmt(st, STMT_CLAIM,
                    "UPDATE requests SET state = 'sending', lease_until = ?4 WHERE seq IN ("
                    " SELECT seq FROM requests WHERE webhook = ?1 AND state = 'pending'"
                    " AND next_attempt_at <= ?2 ORDER BY next_attempt_at LIMIT ?3) "
                    "RETURNING seq, id, received_at, peer, method, target, attempts, manual");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, wh->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, free_slots);
    sqlite3_bind_int64(s, 4, now + LEASE_MS);
    int rc, err = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (!err)
            err = add_item(cj, s, wh);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.claim", rc);
    return err;
}

/* Lowers cj->next_due to the earliest pending row of one webhook. */
static int note_next_due(struct store *st, struct claim_job *cj, const char *label)
{
    sqlite3_stmt *s = store__stmt(st, STMT_NEXT_DUE,
                                  "SELECT MIN(next_attempt_at) FROM requests "
                                  "WHERE webhook = ?1 AND state = 'pending'");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_text(s, 1, label, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        long long due = sqlite3_column_int64(s, 0);
        if (cj->next_due == 0 || due < cj->next_due)
            cj->next_due = due;
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : store__fail(st, "store.next_due", rc);
}

static int claim_run(struct store *st, struct store__job *job)
{
    struct claim_job *cj = (struct claim_job *)job;
    long long now = time_now_ms();
    char label[SOLDR_LABEL_MAX + 1] = "";
    sqlite3_stmt *s = store__stmt(st, STMT_NEXT_LABEL,
                                  "SELECT webhook FROM requests WHERE state = 'pending' AND "
                                  "webhook > ?1 ORDER BY webhook LIMIT 1");
    if (!s)
        return SOLDR_ESTORE;
    /* Visit each webhook with pending rows once (a loose index scan): claim
     * what its free slots allow, and note its earliest due time. */
    for (int scanned = 0;; scanned++) {
        if (scanned == LABELS_PER_CLAIM) {
            cj->more = 1;
            break;
        }
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, label, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW)
            return store__fail(st, "store.claim", rc);
        snprintf(label, sizeof label, "%s", (const char *)sqlite3_column_text(s, 0));
        sqlite3_reset(s);

        struct soldr_webhook wh;
        rc = get_webhook(st, label, &wh);
        if (rc == SOLDR_ENOTFOUND || (rc == 0 && !wh.active))
            rc = orphan(st, cj, label, now);
        else if (rc == 0) {
            uint32_t busy = in_flight(cj, label);
            size_t room = cj->max_total - cj->n;
            uint32_t slots = wh.max_concurrency > busy ? wh.max_concurrency - busy : 0;
            if (slots > room)
                slots = (uint32_t)room;
            if (slots)
                rc = claim_webhook(st, cj, &wh, slots, now);
            if (!rc)
                rc = note_next_due(st, cj, label);
        }
        if (rc)
            return rc;
    }
    sqlite3_reset(s);
    return 0;
}

static void claim_failed(struct store *st, struct store__job *job)
{
    (void)st;
    struct claim_job *cj = (struct claim_job *)job;
    for (size_t i = 0; i < cj->n; i++)
        store_delivery_free(cj->items[i]);
    cj->n = 0;
    job->status = SOLDR_ESTORE;
}

static void claim_done(struct store__job *job)
{
    struct claim_job *cj = (struct claim_job *)job;
    cj->cb(cj->arg, job->status < 0 ? job->status : 0, cj->items, cj->n, cj->next_due, cj->more);
    free(cj->busy);
    free(cj);
}

int store_claim(struct store *st, size_t max_total, const struct store_busy *busy, size_t nbusy,
                store_claim_cb cb, void *arg)
{
    struct claim_job *cj = calloc(1, sizeof *cj);
    if (!cj)
        return UV_ENOMEM;
    if (nbusy && !(cj->busy = malloc(nbusy * sizeof *busy))) {
        free(cj);
        return UV_ENOMEM;
    }
    if (nbusy)
        memcpy(cj->busy, busy, nbusy * sizeof *busy);
    cj->nbusy = nbusy;
    cj->st = st;
    cj->max_total = max_total;
    cj->cb = cb;
    cj->arg = arg;
    cj->job.run = claim_run;
    cj->job.failed = claim_failed;
    cj->job.done = claim_done;
    int rc = store__submit(st, &cj->job);
    if (rc) {
        free(cj->busy);
        free(cj);
    }
    return rc;
}

/* ---- recovery --------------------------------------------------------------- */

int store_recover_interrupted(struct store *st)
{
    char sql[512];
    long long now = time_now_ms();
    snprintf(sql, sizeof sql,
             "INSERT INTO attempts (request_seq, started_at, duration_ms, error, manual) "
             "SELECT seq, %lld, 0, 'interrupted', 0 FROM requests WHERE state = 'sending';"
             "UPDATE requests SET state = 'pending', next_attempt_at = %lld, lease_until = NULL "
             "WHERE state = 'sending';",
             now, now);
    int rc = store__exec(st, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    if ((rc = store__exec(st, sql))) {
        store__exec(st, "ROLLBACK");
        return rc;
    }
    int n = sqlite3_changes(st->db);
    if ((rc = store__exec(st, "COMMIT"))) {
        store__exec(st, "ROLLBACK");
        return rc;
    }
    return n;
}
