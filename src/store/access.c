/* store_call and the read-only connection pool (see access.h). */
#include <stdlib.h>

#include "common/log.h"
#include "store/access.h"
#include "store/store_int.h"

struct call_job {
    struct store__job job;
    store_fn fn;
    void *arg;
    void (*done)(void *arg, int rc);
    int rc; /* fn's result (job.status is the batch's) */
};

static int call_run(struct store *st, struct store__job *job)
{
    struct call_job *cj = (struct call_job *)job;
    if (store__exec(st, "SAVEPOINT call"))
        return SOLDR_ESTORE;
    int rc = cj->fn(st, cj->arg);
    if (rc < 0 && store__exec(st, "ROLLBACK TO call"))
        return SOLDR_ESTORE;
    if (store__exec(st, "RELEASE call"))
        return SOLDR_ESTORE;
    cj->rc = rc;
    /* Only a database failure dooms the batch; the function's own refusal
     * (a duplicate id, a missing row) is its result. */
    return rc == SOLDR_ESTORE ? rc : 0;
}

static void call_failed(struct store *st, struct store__job *job)
{
    (void)st;
    job->status = SOLDR_ESTORE;
}

static void call_done(struct store__job *job)
{
    struct call_job *cj = (struct call_job *)job;
    cj->done(cj->arg, job->status < 0 ? job->status : cj->rc);
    free(cj);
}

int store_call(struct store *st, store_fn fn, void *arg, void (*done)(void *arg, int rc))
{
    struct call_job *cj = calloc(1, sizeof *cj);
    if (!cj)
        return UV_ENOMEM;
    cj->fn = fn;
    cj->arg = arg;
    cj->done = done;
    cj->job.run = call_run;
    cj->job.failed = call_failed;
    cj->job.done = call_done;
    int rc = store__submit(st, &cj->job);
    if (rc)
        free(cj);
    return rc;
}

struct store_reader *store_reader_get(struct store *st)
{
    pthread_mutex_lock(&st->readers_mu);
    struct store_reader *r = st->readers;
    if (r)
        st->readers = r->next;
    pthread_mutex_unlock(&st->readers_mu);
    if (r)
        return r;
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    int rc =
        sqlite3_open_v2(st->opts.path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("store.reader", "cannot open a read-only connection: %s", sqlite3_errstr(rc));
        sqlite3_close(r->db);
        free(r);
        return NULL;
    }
    sqlite3_busy_timeout(r->db, 5000);
    sqlite3_extended_result_codes(r->db, 1);
    return r;
}

void store_reader_put(struct store *st, struct store_reader *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&st->readers_mu);
    r->next = st->readers;
    st->readers = r;
    pthread_mutex_unlock(&st->readers_mu);
}

void store_readers_close(struct store *st)
{
    pthread_mutex_lock(&st->readers_mu);
    struct store_reader *r = st->readers;
    st->readers = NULL;
    pthread_mutex_unlock(&st->readers_mu);
    while (r) {
        struct store_reader *next = r->next;
        sqlite3_close(r->db);
        free(r);
        r = next;
    }
}
