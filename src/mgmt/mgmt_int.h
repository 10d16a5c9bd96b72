/* Internals shared by the mgmt files. */
#ifndef SOLDR_MGMT_INT_H
#define SOLDR_MGMT_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>

#include "httpd/httpd.h"
#include "mgmt/mgmt.h"
#include "store/access.h"

struct mgmt_call;

struct mgmt {
    const struct soldr_config *cfg;
    struct store *st;
    uv_loop_t *main_loop;
    uv_async_t main_async; /* on main_loop: the thread has finished */
    uv_loop_t loop;        /* the mgmt thread's own loop */
    uv_async_t async;      /* on loop: store results and the stop request */
    pthread_t thread;
    struct httpd *httpd;
    struct tls_config *tls;
    int listen_fd;
    char secret[512];
    size_t secret_len;
    pthread_mutex_t mu;
    struct mgmt_call *results; /* guarded by mu: store results for the loop */
    int stop_requested;        /* guarded by mu */
    int stopping;              /* mgmt loop */
    int in_flight;             /* mgmt loop: API calls not answered yet */
    void (*stop_done)(void *arg);
    void *stop_arg;
};

/* One API call being served (mgmt loop). */
struct mgmt_call {
    struct mgmt *m;
    struct httpd_conn *conn;
    struct soldr_request *req;
    char method[16];
    char path[1024];       /* percent-decoded, without the query */
    char query[2048];      /* raw, without '?' */
    const char *params[4]; /* :id captures, pointing into path_copy */
    char path_copy[1024];
    cJSON *body; /* parsed JSON body, if the route takes one */
    /* reads on the thread pool */
    uv_work_t work;
    cJSON *(*read_fn)(struct store_reader *rd, struct mgmt_call *c, int *status);
    /* writes on the store's writer thread */
    store_fn write_fn;
    void (*after_write)(struct mgmt_call *c, int rc);
    int write_rc;
    struct mgmt_call *next_result;
    /* the answer */
    int status;
    cJSON *doc;
    void *user;                    /* route data, freed with user_free (or free) */
    void (*user_free)(void *user); /* NULL: free() */
};

/* Answers with a JSON document (takes it) or an error; ends the call. */
void mgmt__reply_json(struct mgmt_call *c, int status, cJSON *doc);
void mgmt__reply_error(struct mgmt_call *c, int status, const char *msg, const char *field);
void mgmt__reply(struct mgmt_call *c, int status, const char *ctype, const char *extra,
                 const void *body, size_t len);
/* Runs fn on the thread pool with a read-only connection; fn returns a
 * document (answered with *status, default 200) or NULL with *status set
 * (and an error document built by it, or a generic one). */
void mgmt__read(struct mgmt_call *c,
                cJSON *(*fn)(struct store_reader *rd, struct mgmt_call *c, int *status));
/* Runs fn(st, c) on the writer thread; after(c, rc) then runs on the mgmt loop. */
void mgmt__write(struct mgmt_call *c, store_fn fn, void (*after)(struct mgmt_call *c, int rc));
/* Query string parameter (percent-decoded into out); 1 if present. */
int mgmt__query(const struct mgmt_call *c, const char *name, char *out, size_t cap);

/* Routes: each file registers handlers through these tables. */
typedef void (*mgmt_handler)(struct mgmt_call *c);
struct mgmt_route {
    const char *method;
    const char *pattern; /* "/api/v1/webhooks/:id" */
    mgmt_handler fn;
    int json_body; /* parse the body as a JSON object first */
};
extern const struct mgmt_route mgmt__webhook_routes[];
extern const struct mgmt_route mgmt__request_routes[];
extern const struct mgmt_route mgmt__stats_routes[];

/* The httpd handler of the mgmt port (server.c). */
void on_request_cb(void *ctx, struct httpd_conn *conn, struct soldr_request *req);

/* Static UI files (ui.c). 1 if served. */
int mgmt__static(struct mgmt_call *c);

#endif
