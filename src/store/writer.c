/* The writer thread: group commit and the stdout fallback.
 *
 * Invariants (the ack rule; DESIGN.md "Durability and the ack"):
 *  1. An insert reports STORE_COMMITTED only after COMMIT returned SQLITE_OK
 *     for the transaction that holds its row.
 *  2. If that transaction does not commit, the record is written in full to
 *     the fallback fd (and synced when the fd is a file) before STORE_LOGGED
 *     is reported; if the write fails the outcome is SOLDR_EFALLBACK, so the
 *     caller answers 503 and the sender retries.
 *  3. Every job accepted by store__submit gets exactly one done() call on the
 *     loop thread, also while the store is stopping.
 *  4. Only the writer thread touches the connection between store_start and
 *     the end of store_stop.
 */
#include <assert.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "store/delivery.h"
#include "store/store_int.h"

/* A batch larger than this waits for the next commit: keeps each transaction,
 * and so the latency of the requests in it, bounded under heavy load. */
#define BATCH_MAX      2048
#define SOLO_MAX_SKIPS 8

struct insert_job {
    struct store__job job;
    struct store *store;
    const struct soldr_request *req;
    store_insert_cb cb;
    void *arg;
};

/* ---- fallback --------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void insert_failed(struct store *st, struct store__job *job)
{
    struct insert_job *ij = (struct insert_job *)job;
    struct buf line;
    buf_init(&line, (size_t)-1);
    int rc = req_to_json(ij->req, &line);
    if (!rc)
        rc = buf_append(&line, "\n", 1);
    if (!rc)
        rc = write_all(st->opts.fallback_fd, line.data, line.len);
    if (!rc) {
        struct stat sb;
        if (fstat(st->opts.fallback_fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
            fdatasync(st->opts.fallback_fd) != 0)
            rc = -1;
    }
    buf_free(&line);
    if (rc) {
        log_error("store.fallback_failed",
                  "request %s was neither committed nor logged to stdout (%s): answering 503",
                  ij->req->id, rc == -1 ? "write failed" : soldr_strerror(rc));
        job->status = SOLDR_EFALLBACK;
    } else {
        job->status = STORE_LOGGED;
    }
}

static int insert_run(struct store *st, struct store__job *job)
{
    struct insert_job *ij = (struct insert_job *)job;
    int rc = store__insert_request(st, st->insert_req, ij->req);
    return rc == SQLITE_DONE ? 0 : store__fail(st, "store.insert", rc);
}

static void insert_done(struct store__job *job)
{
    struct insert_job *ij = (struct insert_job *)job;
    if (job->status == STORE_COMMITTED)
        ij->store->inserted = 1;
    ij->cb(ij->arg, job->status);
    free(ij);
}

int store_insert_request(struct store *st, const struct soldr_request *req, store_insert_cb cb,
                         void *arg)
{
    assert(req->id[0] && req->webhook[0]);
    struct insert_job *ij = calloc(1, sizeof *ij);
    if (!ij)
        return UV_ENOMEM;
    ij->job.run = insert_run;
    ij->job.failed = insert_failed;
    ij->job.done = insert_done;
    ij->job.bytes = req->data.len + 512;
    ij->req = req;
    ij->store = st;
    ij->cb = cb;
    ij->arg = arg;
    int rc = store__submit(st, &ij->job);
    if (rc)
        free(ij);
    return rc;
}

/* ---- the thread ------------------------------------------------------------- */

int store__submit(struct store *st, struct store__job *job)
{
    pthread_mutex_lock(&st->mu);
    int rc = 0;
    if (st->stopping)
        rc = SOLDR_ESTOPPED;
    else if (st->queued_bytes > 0 && st->queued_bytes + job->bytes > st->opts.max_queue_bytes)
        rc = SOLDR_EBUSY;
    if (rc == 0) {
        job->next = NULL;
        if (st->queue_tail)
            st->queue_tail->next = job;
        else
            st->queue_head = job;
        st->queue_tail = job;
        st->queued_bytes += job->bytes;
        pthread_cond_signal(&st->cond);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static void run_batch(struct store *st, struct store__job *batch)
{
    int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    int ok = rc == SQLITE_OK;
    if (!ok)
        store__fail(st, "store.begin_failed", rc);
    for (struct store__job *j = batch; ok && j; j = j->next)
        ok = (j->status = j->run(st, j)) >= 0;
    if (ok)
        ok = store__flush_counts(st) == 0;
    if (ok) {
        rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
        ok = rc == SQLITE_OK;
        if (!ok)
            store__fail(st, "store.commit_failed", rc);
    }
    atomic_store(&st->unhealthy, !ok);
    metrics_inc(ok ? &st->metrics.commits : &st->metrics.commit_failures);
    if (ok) {
        size_t n = 0;
        for (struct store__job *j = batch; j; j = j->next)
            n++;
        metrics_observe(&st->metrics.batch_size, (double)n);
        return;
    }
    store__drop_counts(st);
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    size_t n = 0;
    for (struct store__job *j = batch; j; j = j->next, n++)
        j->failed(st, j);
    log_error("store.batch_failed",
              "a batch of %zu writes did not commit; requests in it "
              "went to the stdout fallback",
              n);
}

/* Unlinks the next batch from the queue (mu held); *last gets its tail.
 * Ordinary jobs (ingest, claims, outcomes, admin writes) go first, up to
 * BATCH_MAX, in queue order; a solo job (a purge chunk) runs only when no
 * ordinary job is waiting, and alone. So ingest never waits behind a purge
 * chunk that has not started yet: at most behind the one that runs. Under
 * a queue that never empties, a solo job passed over SOLO_MAX_SKIPS times
 * runs next, so the purge cannot starve. */
static struct store__job *take_batch(struct store *st, struct store__job **last)
{
    struct store__job *head = NULL, *tail = NULL, *prev = NULL, *j = st->queue_head;
    int n = 0;
    if (j && j->solo && st->solo_skips >= SOLO_MAX_SKIPS)
        j = NULL; /* the waiting purge chunk goes now */
    while (j && n < BATCH_MAX) {
        struct store__job *next = j->next;
        if (!j->solo) {
            if (prev)
                prev->next = next;
            else
                st->queue_head = next;
            if (st->queue_tail == j)
                st->queue_tail = prev;
            j->next = NULL;
            if (tail)
                tail->next = j;
            else
                head = j;
            tail = j;
            n++;
        } else {
            prev = j;
        }
        j = next;
    }
    if (head && prev) {
        st->solo_skips++; /* a solo job was passed over */
    } else if (!head) {   /* only solo jobs wait, or one waited long enough: alone */
        st->solo_skips = 0;
        head = tail = st->queue_head;
        st->queue_head = head->next;
        if (!st->queue_head)
            st->queue_tail = NULL;
        head->next = NULL;
    }
    *last = tail;
    return head;
}

static void *writer_main(void *arg)
{
    struct store *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->mu);
        while (!st->queue_head && !st->stopping)
            pthread_cond_wait(&st->cond, &st->mu);
        if (!st->queue_head) {
            pthread_mutex_unlock(&st->mu);
            break; /* stopping and drained */
        }
        struct store__job *last = NULL;
        struct store__job *batch = take_batch(st, &last);
        pthread_mutex_unlock(&st->mu);

        run_batch(st, batch);

        pthread_mutex_lock(&st->mu);
        if (st->done_tail)
            st->done_tail->next = batch;
        else
            st->done_head = batch;
        st->done_tail = last;
        pthread_mutex_unlock(&st->mu);
        uv_async_send(&st->async);
    }
    uv_async_send(&st->async); /* lets the loop see that the thread ended */
    return NULL;
}

static void on_async_closed(uv_handle_t *h)
{
    struct store *st = h->data;
    if (st->stop_done)
        st->stop_done(st->stop_arg);
}

static void on_async(uv_async_t *a)
{
    struct store *st = a->data;
    pthread_mutex_lock(&st->mu);
    struct store__job *j = st->done_head;
    st->done_head = st->done_tail = NULL;
    for (struct store__job *k = j; k; k = k->next)
        st->queued_bytes -= k->bytes;
    int finished = st->stopping && !st->queue_head;
    pthread_mutex_unlock(&st->mu);
    while (j) {
        struct store__job *next = j->next;
        j->done(j);
        j = next;
    }
    int woken = atomic_exchange(&st->wake, 0);
    if ((st->inserted || woken) && st->insert_hook) {
        st->inserted = 0;
        st->insert_hook(st->insert_hook_arg);
    }
    if (finished && st->thread_started) {
        /* The thread may still be committing its last batch: join waits for
         * it, and a last on_async pass picks up what it posted. */
        pthread_join(st->thread, NULL);
        st->thread_started = 0;
        on_async(a);
        uv_close((uv_handle_t *)a, on_async_closed);
    }
}

int store_start(struct store *st, uv_loop_t *loop)
{
    st->loop = loop;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cond, NULL);
    int rc = uv_async_init(loop, &st->async, on_async);
    if (rc)
        return rc;
    st->async.data = st;
    if (pthread_create(&st->thread, NULL, writer_main, st) != 0) {
        uv_close((uv_handle_t *)&st->async, NULL);
        return UV_EAGAIN;
    }
    st->thread_started = 1;
    return 0;
}

void store_stop(struct store *st, void (*done)(void *arg), void *arg)
{
    st->stop_done = done;
    st->stop_arg = arg;
    pthread_mutex_lock(&st->mu);
    st->stopping = 1;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->mu);
    uv_async_send(&st->async);
}

void store_on_insert(struct store *st, void (*hook)(void *arg), void *arg)
{
    st->insert_hook = hook;
    st->insert_hook_arg = arg;
}

int store_healthy(struct store *st)
{
    return !atomic_load(&st->unhealthy);
}
