#include "purge/purge.h"

#include <stdlib.h>

#include "common/log.h"
#include "store/purge.h"

#define FIRST_PASS_MS 1000

struct purge {
    uv_loop_t *loop;
    const struct soldr_config *cfg;
    struct store *st;
    uv_timer_t timer;
    int running, stopping;
    long long cutoff;
    uint64_t t0;
    struct store_purge_counts total;
    void (*stop_done)(void *arg);
    void *stop_arg;
};

static void start_pass(uv_timer_t *t);

static void on_closed(uv_handle_t *h)
{
    struct purge *p = h->data;
    void (*done)(void *) = p->stop_done;
    void *arg = p->stop_arg;
    free(p);
    if (done)
        done(arg);
}

static void finish(struct purge *p)
{
    p->running = 0;
    if (p->stopping) {
        uv_close((uv_handle_t *)&p->timer, on_closed);
        return;
    }
    uv_timer_start(&p->timer, start_pass, p->cfg->purge_interval_ms, 0);
}

static void on_chunk(void *arg, int status, const struct store_purge_counts *c)
{
    struct purge *p = arg;
    if (status < 0) {
        log_error("purge.failed", "purge chunk failed (%s): trying again at the next pass",
                  soldr_strerror(status));
        finish(p);
        return;
    }
    p->total.attempts += c->attempts;
    p->total.requests += c->requests;
    p->total.undelivered += c->undelivered;
    if ((c->attempts || c->requests) && !p->stopping &&
        store_purge_chunk(p->st, p->cutoff, (int)p->cfg->purge_chunk, on_chunk, p) == 0)
        return; /* queued behind whatever ingest work arrived meanwhile */
    if (p->total.attempts || p->total.requests)
        log_info("purge.pass",
                 "deleted %lld requests (%lld never delivered) and %lld attempts older than "
                 "%llu days in %llu ms",
                 p->total.requests, p->total.undelivered, p->total.attempts,
                 (unsigned long long)p->cfg->retention_days,
                 (unsigned long long)((uv_hrtime() - p->t0) / 1000000));
    finish(p);
}

static void start_pass(uv_timer_t *t)
{
    struct purge *p = t->data;
    p->running = 1;
    p->t0 = uv_hrtime();
    p->total = (struct store_purge_counts){0};
    p->cutoff = time_now_ms() - (long long)p->cfg->retention_days * 86400000LL;
    int rc = store_purge_chunk(p->st, p->cutoff, (int)p->cfg->purge_chunk, on_chunk, p);
    if (rc) {
        log_error("purge.failed", "cannot queue a purge chunk: %s", soldr_strerror(rc));
        finish(p);
    }
}

int purge_start(struct purge **out, uv_loop_t *loop, const struct soldr_config *cfg,
                struct store *st)
{
    struct purge *p = calloc(1, sizeof *p);
    if (!p)
        return UV_ENOMEM;
    p->loop = loop;
    p->cfg = cfg;
    p->st = st;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, start_pass, FIRST_PASS_MS, 0);
    *out = p;
    return 0;
}

void purge_stop(struct purge *p, void (*done)(void *arg), void *arg)
{
    p->stopping = 1;
    p->stop_done = done;
    p->stop_arg = arg;
    uv_timer_stop(&p->timer);
    if (!p->running)
        uv_close((uv_handle_t *)&p->timer, on_closed);
}
