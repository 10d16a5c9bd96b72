/* Internals shared by the store's files. Not for other modules. */
#ifndef SOLDR_STORE_INT_H
#define SOLDR_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

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
};

struct store {
    sqlite3 *db;
    struct store_opts opts;
    sqlite3_stmt *insert_req; /* cached: the hot path */

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
    void (*stop_done)(void *arg);
    void *stop_arg;
};

/* Logs the connection's last error under `event`; returns SOLDR_ESTORE. */
int store__fail(struct store *st, const char *event, int rc);
/* Runs SQL without results; 0 or SOLDR_ESTORE (logged). */
int store__exec(struct store *st, const char *sql);
/* Binds a request and steps the insert statement. SQLite result code. */
int store__insert_request(struct store *st, sqlite3_stmt *stmt, const struct soldr_request *r);
/* Queues a job for the writer (loop thread). */
int store__submit(struct store *st, struct store__job *job);

#endif
