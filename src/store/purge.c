/* Retention: chunked deletes of old attempts and requests, and the rollups. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/purge.h"
#include "store/store_int.h"

static int purge_attempts(struct store *st, long long cutoff, int limit, long long *n)
{
    sqlite3_stmt *s = store__stmt(st, STMT_PURGE_ATTEMPTS,
                                  "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts "
                                  "ORDER BY id LIMIT ?2) AND started_at < ?1");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, cutoff);
    sqlite3_bind_int(s, 2, limit);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return store__fail(st, "store.purge", rc);
    *n = sqlite3_changes(st->db);
    return 0;
}

static int purge_requests(struct store *st, long long cutoff, int limit,
                          struct store_purge_counts *c)
{
    sqlite3_stmt *s = store__stmt(st, STMT_PURGE_REQUESTS,
                                  "DELETE FROM requests WHERE seq IN (SELECT seq FROM requests "
                                  "ORDER BY seq LIMIT ?2) AND received_at < ?1 "
                                  "RETURNING webhook, state");
    if (!s)
        return SOLDR_ESTORE;
    sqlite3_bind_int64(s, 1, cutoff);
    sqlite3_bind_int(s, 2, limit);
    long long now = time_now_ms();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *wh = (const char *)sqlite3_column_text(s, 0);
        const char *state = (const char *)sqlite3_column_text(s, 1);
        c->requests++;
        store__count(st, wh, now, RU_PURGED, 1);
        if (strcmp(state, "pending") == 0 || strcmp(state, "sending") == 0) {
            c->undelivered++;
            store__count(st, wh, now, RU_PURGED_UNDELIVERED, 1);
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : store__fail(st, "store.purge", rc);
}

/* Attempts first, then requests (DESIGN.md): counts in c. */
static int purge_one_chunk(struct store *st, long long cutoff, int limit,
                           struct store_purge_counts *c)
{
    memset(c, 0, sizeof *c);
    int rc = purge_attempts(st, cutoff, limit, &c->attempts);
    if (!rc && c->attempts == 0)
        rc = purge_requests(st, cutoff, limit, c);
    return rc;
}

struct purge_job {
    struct store__job job;
    long long cutoff;
    int limit;
    struct store_purge_counts c;
    store_purge_cb cb;
    void *arg;
};

static int purge_run(struct store *st, struct store__job *job)
{
    struct purge_job *pj = (struct purge_job *)job;
    return purge_one_chunk(st, pj->cutoff, pj->limit, &pj->c);
}

static void purge_failed(struct store *st, struct store__job *job)
{
    (void)st;
    job->status = SOLDR_ESTORE;
}

static void purge_done(struct store__job *job)
{
    struct purge_job *pj = (struct purge_job *)job;
    pj->cb(pj->arg, job->status < 0 ? job->status : 0, &pj->c);
    free(pj);
}

int store_purge_chunk(struct store *st, long long cutoff_ms, int limit, store_purge_cb cb,
                      void *arg)
{
    struct purge_job *pj = calloc(1, sizeof *pj);
    if (!pj)
        return UV_ENOMEM;
    pj->cutoff = cutoff_ms;
    pj->limit = limit > 0 ? limit : 1;
    pj->cb = cb;
    pj->arg = arg;
    pj->job.run = purge_run;
    pj->job.failed = purge_failed;
    pj->job.done = purge_done;
    pj->job.solo = 1;
    int rc = store__submit(st, &pj->job);
    if (rc)
        free(pj);
    return rc;
}

static int count_sql(struct store *st, const char *sql, long long cutoff, long long *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return store__fail(st, "store.purge_count", rc);
    sqlite3_bind_int64(s, 1, cutoff);
    rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : store__fail(st, "store.purge_count", rc);
}

int store_purge_now(struct store *st, long long cutoff, int limit, int dry_run,
                    struct store_purge_counts *out)
{
    memset(out, 0, sizeof *out);
    if (dry_run) {
        int rc = count_sql(st, "SELECT count(*) FROM attempts WHERE started_at < ?1", cutoff,
                           &out->attempts);
        if (!rc)
            rc = count_sql(st, "SELECT count(*) FROM requests WHERE received_at < ?1", cutoff,
                           &out->requests);
        if (!rc)
            rc = count_sql(st,
                           "SELECT count(*) FROM requests WHERE received_at < ?1 "
                           "AND state IN ('pending', 'sending')",
                           cutoff, &out->undelivered);
        return rc;
    }
    for (;;) {
        struct store_purge_counts c;
        int rc = store_begin(st);
        if (!rc && (rc = purge_one_chunk(st, cutoff, limit > 0 ? limit : 1, &c)) != 0) {
            store__drop_counts(st);
            store__exec(st, "ROLLBACK");
        }
        if (!rc)
            rc = store_commit(st);
        if (rc)
            return rc;
        out->attempts += c.attempts;
        out->requests += c.requests;
        out->undelivered += c.undelivered;
        if (c.attempts == 0 && c.requests == 0)
            return 0;
    }
}

int store_rollups(struct store *st, int (*each)(void *arg, const struct store_rollup_row *r),
                  void *arg)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT webhook, day, received, delivered, failed, retried, "
                                "orphaned, purged, purged_undelivered FROM rollups "
                                "ORDER BY webhook, day",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return store__fail(st, "store.rollups", rc);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_rollup_row r = {
            .webhook = (const char *)sqlite3_column_text(s, 0),
            .day = sqlite3_column_int64(s, 1),
            .received = sqlite3_column_int64(s, 2),
            .delivered = sqlite3_column_int64(s, 3),
            .failed = sqlite3_column_int64(s, 4),
            .retried = sqlite3_column_int64(s, 5),
            .orphaned = sqlite3_column_int64(s, 6),
            .purged = sqlite3_column_int64(s, 7),
            .purged_undelivered = sqlite3_column_int64(s, 8),
        };
        if (each(arg, &r)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : store__fail(st, "store.rollups", rc);
}
