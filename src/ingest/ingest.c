#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>

#include "common/id.h"
#include "common/log.h"
#include "common/metrics.h"
#include "httpd/httpd.h"

struct ingest {
    const struct soldr_config *cfg;
    struct store *store;
    struct httpd *httpd;
    struct id_gen ids;
    void (*stop_done)(void *arg);
    void *stop_arg;
};

struct pending {
    struct ingest *in;
    struct httpd_conn *conn;
    struct soldr_request *req;
};

static void answer_error(struct httpd_conn *conn, int status, const char *msg, const char *extra)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    httpd_respond(conn, status, "application/json", extra, body, (size_t)n);
}

static void on_stored(void *arg, int outcome)
{
    struct pending *p = arg;
    struct soldr_metrics *m = store_metrics(p->in->store);
    if (outcome == STORE_COMMITTED || outcome == STORE_LOGGED) {
        metrics_inc(outcome == STORE_COMMITTED ? &m->ingest_committed : &m->ingest_fallback);
        metrics_observe(&m->ingest_latency, (double)(time_now_ms() - p->req->received_at) / 1e3);
    } else {
        metrics_inc(&m->ingest_unavailable);
    }
    if (outcome == STORE_COMMITTED || outcome == STORE_LOGGED) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"id\":\"%s\"}", p->req->id);
        httpd_respond(p->conn, 200, "application/json", NULL, body, (size_t)n);
    } else {
        answer_error(p->conn, 503, "request could not be stored, retry later",
                     "Retry-After: 5\r\n");
    }
    free(p);
}

static void on_request(void *ctx, struct httpd_conn *conn, struct soldr_request *req)
{
    struct ingest *in = ctx;
    size_t host_len = 0, hosts = 0;
    const char *host = req_header_get(req, "host", &host_len, &hosts);
    if (hosts != 1) {
        answer_error(conn, 400, hosts ? "more than one Host header" : "missing Host header", NULL);
        return;
    }
    if (!route_label(host, host_len, in->cfg->domain, req->webhook)) {
        answer_error(conn, 404, "unknown host", NULL);
        return;
    }
    id_new(&in->ids, (uint64_t)req->received_at, req->id);
    struct pending *p = malloc(sizeof *p);
    int rc = p ? 0 : UV_ENOMEM;
    if (p) {
        p->in = in;
        p->conn = conn;
        p->req = req;
        rc = store_insert_request(in->store, req, on_stored, p);
    }
    if (rc) {
        free(p);
        if (rc != SOLDR_EBUSY)
            log_error("ingest.store", "cannot queue request: %s", soldr_strerror(rc));
        answer_error(conn, 503, "overloaded, retry later", "Retry-After: 1\r\n");
    }
}

int ingest_start(struct ingest **out, uv_loop_t *loop, const struct soldr_config *cfg,
                 struct store *st, int listen_fd)
{
    struct ingest *in = calloc(1, sizeof *in);
    if (!in)
        return UV_ENOMEM;
    in->cfg = cfg;
    in->store = st;
    id_gen_init(&in->ids);
    struct httpd_limits lim = {
        .max_body = cfg->max_body,
        .max_header_size = cfg->max_header_size,
        .read_timeout_ms = cfg->read_timeout_ms,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .max_connections = cfg->max_connections,
        /* requests being read get the same budget as those waiting for a commit */
        .max_reading_bytes = cfg->max_queue_bytes,
    };
    *out = in;
    if (listen_fd >= 0)
        return httpd_start_fd(&in->httpd, loop, listen_fd, &lim, on_request, in);
    return httpd_start(&in->httpd, loop, cfg->listen, &lim, on_request, in);
}

static void on_httpd_stopped(void *arg)
{
    struct ingest *in = arg;
    void (*done)(void *) = in->stop_done;
    void *darg = in->stop_arg;
    free(in);
    if (done)
        done(darg);
}

void ingest_stop(struct ingest *in, void (*done)(void *arg), void *arg)
{
    in->stop_done = done;
    in->stop_arg = arg;
    if (in->httpd)
        httpd_stop(in->httpd, on_httpd_stopped, in);
    else
        on_httpd_stopped(in);
}
