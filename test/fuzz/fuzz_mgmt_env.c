/* See fuzz_mgmt_env.h. */
#include "fuzz_mgmt_env.h"

#include <string.h>

#include "common/log.h"

/* lifecycle.c's on_results: store results reach the mgmt loop through
 * m->async; the stop request is not used here. */
static void on_results(uv_async_t *a)
{
    struct mgmt *m = a->data;
    pthread_mutex_lock(&m->mu);
    struct mgmt_call *c = m->results;
    m->results = NULL;
    pthread_mutex_unlock(&m->mu);
    while (c) {
        struct mgmt_call *next = c->next_result;
        c->after_write(c, c->write_rc);
        c = next;
    }
}

static void seed_webhook(struct store *st, const char *id)
{
    struct soldr_webhook wh;
    store_webhook_defaults(&wh);
    snprintf(wh.id, sizeof wh.id, "%s", id);
    snprintf(wh.destination, sizeof wh.destination, "http://127.0.0.1:9/%s", id);
    FUZZ_CHECK(store_webhook_insert(st, &wh) == 0, "seed webhook %s", id);
}

static void seed_request(struct store *st, const char *id, long long at)
{
    struct soldr_request r;
    req_init(&r, (size_t)-1);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.webhook, sizeof r.webhook, "%s", FUZZ_WEBHOOK);
    snprintf(r.peer, sizeof r.peer, "127.0.0.1:4242");
    r.received_at = at;
    FUZZ_CHECK(req_set(&r, &r.method, "POST", 4) == 0 &&
                   req_set(&r, &r.target, "/hook?a=1", 9) == 0 &&
                   req_push_header(&r, "Host", 4, "seed.wh.example.com", 19) == 0 &&
                   req_push_header(&r, "Content-Type", 12, "application/json", 16) == 0 &&
                   req_set(&r, &r.body, "{\"n\":1}", 7) == 0,
               "seed request");
    FUZZ_CHECK(store_replay_insert(st, &r) == 1, "seed request %s", id);
    req_free(&r);
}

void fuzz_mgmt_up(struct fuzz_mgmt *e, int listen)
{
    if (!e->cfg.domain[0]) {
        char arg0[] = "fuzz", *argv[] = {arg0, NULL};
        int argc = 1;
        FUZZ_CHECK(config_load(&e->cfg, CFG_SERVE, &argc, argv, stderr) == 0, "config_load");
        e->cfg.max_body = 4096;
        e->cfg.max_header_size = 4096;
        e->cfg.read_timeout_ms = 5000;
        e->cfg.idle_timeout_ms = 5000;
        e->cfg.ui_dir[0] = '\0'; /* the UI built into the binary */
    }
    fuzz_dir_make(&e->dir, "fuzz-mgmt");
    snprintf(e->cfg.data_dir, sizeof e->cfg.data_dir, "%s", e->dir.path);
    snprintf(e->cfg.db_path, sizeof e->cfg.db_path, "%s", e->dir.db);
    e->st = fuzz_store_open(&e->dir);
    seed_webhook(e->st, FUZZ_WEBHOOK);
    seed_webhook(e->st, "other");
    seed_request(e->st, FUZZ_REQ_ID, 1700000000000LL);
    seed_request(e->st, FUZZ_REQ_ID2, 1700000000001LL);

    struct mgmt *m = calloc(1, sizeof *m);
    FUZZ_CHECK(m, "calloc");
    pthread_mutex_init(&m->mu, NULL);
    m->cfg = &e->cfg;
    m->st = e->st;
    m->main_loop = &m->loop;
    m->listen_fd = -1;
    memcpy(m->secret, FUZZ_SECRET, sizeof FUZZ_SECRET);
    m->secret_len = strlen(FUZZ_SECRET);
    FUZZ_CHECK(uv_loop_init(&m->loop) == 0, "uv_loop_init");
    uv_async_init(&m->loop, &m->async, on_results);
    m->async.data = m;
    FUZZ_CHECK(store_start(e->st, &m->loop) == 0, "store_start");
#ifndef FUZZ_MGMT_NO_HTTPD /* fuzz_mgmt_json replaces httpd (a link seam) */
    if (listen) {
        struct httpd_limits lim = {
            .max_body = (e->cfg.max_body + 2) / 3 * 4 + 1024, /* as mgmt_start, scaled down */
            .max_header_size = e->cfg.max_header_size,
            .read_timeout_ms = e->cfg.read_timeout_ms,
            .idle_timeout_ms = e->cfg.idle_timeout_ms,
            .max_connections = 256,
            .tls = NULL,
        };
        FUZZ_CHECK(httpd_start(&m->httpd, &m->loop, "127.0.0.1:0", &lim, on_request_cb, m) == 0,
                   "httpd_start");
        e->port = httpd_port(m->httpd);
    }
#else
    FUZZ_CHECK(!listen, "built without httpd");
#endif
    e->m = m;
    e->loop = &m->loop;
    e->baseline = fuzz_loop_handles(e->loop);
    e->up = 1;
}

static int stopped;

static void on_store_stopped(void *arg)
{
    (void)arg;
    stopped = 1;
}

#ifndef FUZZ_MGMT_NO_HTTPD
static void on_httpd_stopped(void *arg)
{
    struct fuzz_mgmt *e = arg;
    e->m->httpd = NULL;
}
#endif

void fuzz_mgmt_down(struct fuzz_mgmt *e)
{
    if (!e->up)
        return;
    struct mgmt *m = e->m;
    FUZZ_CHECK(m->in_flight == 0, "%d API calls still in flight at stop", m->in_flight);
    stopped = 0;
#ifndef FUZZ_MGMT_NO_HTTPD
    if (m->httpd)
        httpd_stop(m->httpd, on_httpd_stopped, e);
#endif
    uv_close((uv_handle_t *)&m->async, NULL);
    store_stop(e->st, on_store_stopped, NULL);
    fuzz_loop_finish(&m->loop);
    FUZZ_CHECK(stopped && !m->httpd, "a stop callback never ran");
    store_close(e->st);
    pthread_mutex_destroy(&m->mu);
    free(m);
    fuzz_dir_remove(&e->dir);
    e->up = 0;
}
