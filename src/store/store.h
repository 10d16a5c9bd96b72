/* The store: the only module that speaks SQL (only it includes sqlite3.h).
 *
 * One read-write connection, owned by one writer thread once store_start()
 * ran. Work reaches the writer through a queue; it takes everything queued
 * (up to a batch cap), runs it in ONE transaction, commits, and posts the
 * results back to the loop with uv_async_send (group commit: under load one
 * fsync covers many requests; idle, a request commits alone at once).
 *
 * Before store_start() and after store_stop() the same connection serves the
 * synchronous functions below (the CLI: webhook management, replay). They
 * must not be called while the writer thread runs. */
#ifndef SOLDR_STORE_H
#define SOLDR_STORE_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "common/errors.h"
#include "common/config.h"
#include "common/request.h"

struct store;

struct store_opts {
    const char *path; /* database file; its directory must exist */
    int durability;   /* SOLDR_DURABILITY_FULL or _NORMAL */
    uint64_t busy_timeout_ms;
    uint64_t max_queue_bytes; /* store_insert_request fails with SOLDR_EBUSY past this */
    int fallback_fd;          /* where records go when a commit fails (stdout) */
};

/* Opens (creating if needed) the database, sets WAL and the pragmas, applies
 * the migrations in order. SOLDR_ESCHEMA if the file is newer than this
 * binary, SOLDR_ESTORE on any other database error (logged). */
SOLDR_MUST_USE int store_open(struct store **out, const struct store_opts *opts);
/* Closes the connection. The writer thread must be stopped. */
void store_close(struct store *st);
/* The schema version this binary knows (the highest migration). */
int store_schema_version(void);

/* The process's metrics (common/metrics.h); lives as long as the store. */
struct soldr_metrics *store_metrics(struct store *st);
/* 1 unless the last batch failed to commit (thread-safe; /healthz). */
int store_healthy(struct store *st);

/* ---- asynchronous writes (loop thread) ------------------------------------ */

/* Starts the writer thread; results are delivered on `loop`. */
SOLDR_MUST_USE int store_start(struct store *st, uv_loop_t *loop);
/* Lets the writer finish everything queued (callbacks still run), then joins
 * it and closes the async handle; `done` runs on the loop when all is closed. */
void store_stop(struct store *st, void (*done)(void *arg), void *arg);

/* Outcome of store_insert_request, passed to its callback:
 *   STORE_COMMITTED  the request is in the database (durable per durability);
 *   STORE_LOGGED     the commit failed, the request was written to the
 *                    fallback fd as one JSON line (req_to_json) and flushed;
 *   < 0              neither: the sender must retry (SOLDR_EFALLBACK). */
enum { STORE_COMMITTED = 0, STORE_LOGGED = 1 };
typedef void (*store_insert_cb)(void *arg, int outcome);

/* Queues req (id, webhook, received_at set) for the next group commit. req is
 * borrowed: it must stay valid and unchanged until cb runs on the loop.
 * Returns 0 (cb will run exactly once), SOLDR_EBUSY if the queue holds more
 * than max_queue_bytes, SOLDR_ESTOPPED while stopping (cb will not run). */
SOLDR_MUST_USE int store_insert_request(struct store *st, const struct soldr_request *req,
                                        store_insert_cb cb, void *arg);

/* ---- synchronous (CLI) ---------------------------------------------------- */

struct soldr_webhook {
    char id[SOLDR_LABEL_MAX + 1]; /* the subdomain label */
    char destination[2048];       /* http(s) URL */
    int active;
    uint32_t max_attempts;            /* attempts before a request is failed */
    uint32_t timeout_ms;              /* per attempt */
    uint32_t backoff_base_ms;         /* first retry delay (before jitter) */
    uint32_t backoff_cap_ms;          /* largest retry delay */
    uint32_t max_concurrency;         /* deliveries in flight to this webhook at most */
    char signing_secret[256];         /* "whsec_<base64>" or empty: unsigned */
    char alert_email[256];            /* empty: the configured default */
    char alert_url[2048];             /* empty: the configured default */
    long long alerted_at;             /* 0: not in an incident */
    long long created_at, updated_at; /* unix ms, set by the store */
};

/* Checks every setting; 0, or SOLDR_EMALFORMED with *field naming the first
 * bad one and *why saying what is wrong (static strings). */
int store_webhook_validate(const struct soldr_webhook *wh, const char **field, const char **why);
/* Fills a webhook with the defaults used when a field is not given. */
void store_webhook_defaults(struct soldr_webhook *wh);
/* Inserts (SOLDR_EEXIST if the id exists) or updates (SOLDR_ENOTFOUND). */
SOLDR_MUST_USE int store_webhook_insert(struct store *st, struct soldr_webhook *wh);
SOLDR_MUST_USE int store_webhook_update(struct store *st, struct soldr_webhook *wh);
/* 0 and *out filled, or SOLDR_ENOTFOUND. */
SOLDR_MUST_USE int store_webhook_get(struct store *st, const char *id, struct soldr_webhook *out);
/* Calls each() for every webhook ordered by id; stops early if it returns non-zero. */
SOLDR_MUST_USE int store_webhook_list(struct store *st,
                                      int (*each)(void *arg, const struct soldr_webhook *wh),
                                      void *arg);
/* 0 or SOLDR_ENOTFOUND. Stored requests of the webhook are kept. */
SOLDR_MUST_USE int store_webhook_delete(struct store *st, const char *id);

/* Replay: inserts a request unless one with its id exists. Returns 1 when
 * inserted, 0 when already present, < 0 on error. Call between
 * store_begin/store_commit to batch many inserts into one transaction. */
SOLDR_MUST_USE int store_replay_insert(struct store *st, const struct soldr_request *req);
SOLDR_MUST_USE int store_begin(struct store *st);
SOLDR_MUST_USE int store_commit(struct store *st);

/* Reads one stored request by id into an initialised r (tests, CLI). */
SOLDR_MUST_USE int store_request_get(struct store *st, const char *id, struct soldr_request *r);

#endif
