/* Internals shared by the store's files. Not for other modules. */
#ifndef SOLDR_STORE_INT_H
#define SOLDR_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "common/metrics.h"
#include "store/store.h"

/* A unit of work for the writer thread. run() executes inside the batch's
 * transaction on the writer thread; if the batch does not commit, failed()
 * runs (writer thread) instead of the result being kept; done() then runs on
 * the loop thread and releases the job. */
struct store__job {
    struct store__job *next;
    int (*run)(struct store *st, struct store__job *job);
    void (*failed)(struct store *st, struct store__job *job);
    void (*done)(struct store__job *job);
    int status;
    size_t bytes; /* counted against max_queue_bytes while queued */
    int solo;     /* runs in a transaction of its own (purge chunks) */
};

/* Rollup counters (table rollups). */
enum {
    RU_RECEIVED,
    RU_DELIVERED,
    RU_FAILED,
    RU_RETRIED,
    RU_ORPHANED,
    RU_PURGED,
    RU_PURGED_UNDELIVERED,
    RU_NFIELDS
};

struct store__rollup {
    char webhook[SOLDR_LABEL_MAX + 1];
    long long day;
    long long n[RU_NFIELDS];
};

/* Statements prepared once and kept (store__stmt). */
enum {
    STMT_NEXT_LABEL,
    STMT_WEBHOOK_GET,
    STMT_ORPHAN,
    STMT_CLAIM,
    STMT_NEXT_DUE,
    STMT_ATTEMPT_INSERT,
    STMT_REQ_OUTCOME,
    STMT_ALERT_SET,
    STMT_ALERT_CLEAR,
    STMT_ALERT_INSERT,
    STMT_ALERTS_DUE,
    STMT_ALERTS_NEXT,
    STMT_ALERT_SENT,
    STMT_ALERT_RETRY,
    STMT_ROLLUP,
    STMT_BODY_GET,
    STMT_PURGE_ATTEMPTS,
    STMT_PURGE_REQUESTS,
    STMT_SEQ_OF,
    STMT_EDIT_GET,
    STMT_EDIT_PUT,
    STMT_REQ_HEAD,
    STMT_RESEND,
    STORE__NSTMT
};

struct store {
    sqlite3 *db;
    struct store_opts opts;
    sqlite3_stmt *insert_req;  /* cached: the hot path */
    sqlite3_stmt *insert_body; /* cached: the hot path */
    /* Rollup deltas of the transaction in progress (writer thread, or the
     * synchronous API): flushed just before COMMIT, dropped on rollback. */
    struct store__rollup *ru;
    size_t nru, ru_cap;
    sqlite3_stmt *cache[STORE__NSTMT]; /* see store__stmt */

    /* writer thread */
    uv_loop_t *loop;
    uv_async_t async;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct store__job *queue_head, *queue_tail; /* guarded by mu */
    struct store__job *done_head, *done_tail;   /* guarded by mu */
    size_t queued_bytes;                        /* guarded by mu */
    int stopping;                               /* guarded by mu */
    int solo_skips;                             /* guarded by mu: see take_batch */
    void (*stop_done)(void *arg);
    void *stop_arg;
    struct soldr_metrics metrics;
    _Atomic int unhealthy;          /* the last batch did not commit */
    pthread_mutex_t readers_mu;     /* guards readers */
    struct store_reader *readers;   /* free read-only connections */
    void (*insert_hook)(void *arg); /* loop thread: a batch with inserts committed */
    void *insert_hook_arg;
    int inserted;     /* loop thread */
    _Atomic int wake; /* a resend made work due (set on the writer thread) */
};

/* Logs the connection's last error under `event`; returns SOLDR_ESTORE. */
int store__fail(struct store *st, const char *event, int rc);
/* Runs SQL without results; 0 or SOLDR_ESTORE (logged). */
int store__exec(struct store *st, const char *sql);
/* Binds a request and steps the insert statement. SQLite result code. */
int store__insert_request(struct store *st, sqlite3_stmt *stmt, const struct soldr_request *r);
/* Columns read by store__row_to_webhook, in its order. */
#define STORE__WEBHOOK_COLUMNS                                                                     \
    "id, destination, active, max_attempts, timeout_ms, backoff_base_ms, backoff_cap_ms, "         \
    "max_concurrency, signing_secret, alert_email, alert_url, alerted_at, created_at, "            \
    "updated_at"
void store__row_to_webhook(sqlite3_stmt *s, int first_col, struct soldr_webhook *wh);

/* The cached statement `idx`, prepared from sql on first use and reset for
 * reuse; NULL on error (logged). Writer thread or synchronous use only. */
sqlite3_stmt *store__stmt(struct store *st, int idx, const char *sql);

/* A read-only connection (access.h). */
struct store_reader {
    sqlite3 *db;
    struct store_reader *next;
};

/* Adds n to counter `field` of webhook on the UTC day of at_ms, in the
 * transaction in progress. */
void store__count(struct store *st, const char *webhook, long long at_ms, int field, long long n);
/* Writes the pending counter deltas (before COMMIT); 0 or SOLDR_ESTORE. */
int store__flush_counts(struct store *st);
/* Forgets them (after a rollback). */
void store__drop_counts(struct store *st);
/* Reads what is delivered for request seq into r: the edit's method,
 * target, headers and body if there is one (*edited = 1), else the original
 * headers and body (method and target are left to the caller). */
int store__load_current(struct store *st, long long seq, struct soldr_request *r, int *edited);
/* Reads the headers and body of request seq into r (appending). */
int store__load_body(struct store *st, long long seq, struct soldr_request *r);

/* The SQL of the mgmt list query for filter f (reads.c; exposed for the
 * query-plan test): 0, or -1 if f->state is not a state or cap is too small. */
struct store_filter;
int store__list_sql(const struct store_filter *f, int has_cursor, char *sql, size_t cap);

/* Queues a job for the writer (loop thread). */
int store__submit(struct store *st, struct store__job *job);

#endif
