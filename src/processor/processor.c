/* The processor's scheduling: when to claim, how many, and shutdown.
 *
 * Notes:
 *  1. One claim at a time (claiming); a wake-up during a claim sets
 *     claim_again so no wake-up is lost and claims never pile up.
 *  2. Wake-ups: a commit of new requests (store_on_insert), a finished
 *     delivery (a slot freed), and due_timer for the earliest future retry.
 *     When the earliest due time has passed but nothing could be claimed,
 *     every such request belongs to a webhook at its concurrency cap, whose
 *     finishing deliveries wake the processor: no busy loop. A sweep every
 *     SWEEP_MS at the latest finds work that another process stored.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"
#include "processor/proc_int.h"

#define ALERT_GRACE_MS 1000
#define SWEEP_MS       30000

uint64_t proc__random(struct proc *p)
{
    /* xorshift64*: jitter only, not security */
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 0x2545F4914F6CDD1DULL;
}

void proc__busy_add(struct proc *p, const char *label, int delta)
{
    for (size_t i = 0; i < p->nbusy; i++) {
        if (strcmp(p->busy[i].label, label) != 0)
            continue;
        p->busy[i].in_flight += (uint32_t)delta;
        if (p->busy[i].in_flight == 0)
            p->busy[i] = p->busy[--p->nbusy];
        return;
    }
    if (delta <= 0)
        return;
    if (p->nbusy == p->busy_cap) {
        size_t cap = p->busy_cap ? p->busy_cap * 2 : 16;
        struct store_busy *b = realloc(p->busy, cap * sizeof *b);
        if (!b)
            return; /* the claim then sees fewer busy slots: at worst one more in flight */
        p->busy = b;
        p->busy_cap = cap;
    }
    snprintf(p->busy[p->nbusy].label, sizeof p->busy[0].label, "%s", label);
    p->busy[p->nbusy++].in_flight = (uint32_t)delta;
}

static void on_due_timer(uv_timer_t *t)
{
    proc__kick(t->data);
}

static void on_claimed(void *arg, int status, struct store_delivery **items, size_t n,
                       long long next_due, int more)
{
    struct proc *p = arg;
    p->claiming = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = proc__deliver(p, items[i]);
        if (rc)
            log_error("processor.deliver", "cannot start a delivery: %s (retried after restart)",
                      soldr_strerror(rc));
    }
    free(items);
    if (p->stopping)
        return;
    if (status < 0) {
        uv_timer_start(&p->due_timer, on_due_timer, 1000, 0); /* the store logged why */
        return;
    }
    if (more || p->claim_again) {
        p->claim_again = 0;
        proc__kick(p);
        return;
    }
    /* Sleep until the next retry is due, but never longer than SWEEP_MS:
     * rows written by another process (soldr replay, a webhook activated with
     * the CLI) wake nothing here, and are found by the next sweep. */
    long long now = time_now_ms();
    long long wait = next_due > now ? next_due - now : SWEEP_MS;
    uv_timer_start(&p->due_timer, on_due_timer, (uint64_t)(wait < SWEEP_MS ? wait : SWEEP_MS), 0);
}

void proc__kick(struct proc *p)
{
    if (p->stopping)
        return;
    if (p->claiming) {
        p->claim_again = 1;
        return;
    }
    size_t room = p->cfg->max_deliveries > p->in_flight ? p->cfg->max_deliveries - p->in_flight : 0;
    if (room == 0)
        return; /* a finishing delivery kicks again */
    p->claiming = 1;
    p->claim_again = 0;
    int rc = store_claim(p->st, room, p->busy, p->nbusy, on_claimed, p);
    if (rc) {
        p->claiming = 0;
        uv_timer_start(&p->due_timer, on_due_timer, 1000, 0);
    }
}

static void on_insert(void *arg)
{
    proc__kick(arg);
}

int proc_start(struct proc **out, uv_loop_t *loop, const struct soldr_config *cfg, struct store *st)
{
    struct proc *p = calloc(1, sizeof *p);
    if (!p)
        return UV_ENOMEM;
    p->loop = loop;
    p->st = st;
    p->cfg = cfg;
    p->defs.smtp_enabled = cfg->smtp_url[0] != '\0';
    p->defs.email = cfg->alert_email;
    p->defs.url = cfg->alert_url;
    if (getrandom(&p->rng, sizeof p->rng, 0) != sizeof p->rng || p->rng == 0)
        p->rng = uv_hrtime() | 1;
    int rc = curluv_init(&p->cu, loop, (long)cfg->max_deliveries + 16);
    if (rc) {
        free(p);
        return rc;
    }
    uv_timer_init(loop, &p->due_timer);
    uv_timer_init(loop, &p->grace_timer);
    uv_timer_init(loop, &p->rerecord_timer);
    p->due_timer.data = p->grace_timer.data = p->rerecord_timer.data = p;
    p->handles_open = 3;
    if ((rc = alerter_start(&p->alerter, p))) {
        *out = p;
        return rc;
    }
    store_on_insert(st, on_insert, p);
    *out = p;
    proc__kick(p);
    alerter_kick(p->alerter);
    return 0;
}

/* ---- shutdown ------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    struct proc *p = h->data;
    if (--p->handles_open > 0)
        return;
    void (*done)(void *) = p->stop_done;
    void *arg = p->stop_arg;
    free(p->busy);
    free(p);
    if (done)
        done(arg);
}

static void on_alerter_closed(void *arg)
{
    struct proc *p = arg;
    curluv_close(p->cu);
    uv_close((uv_handle_t *)&p->due_timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->grace_timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->rerecord_timer, on_handle_closed);
}

/* Polls until deliveries and alerts are done; at the deadline abandons what
 * still runs (those requests stay 'sending' and are retried after restart). */
static void on_grace_tick(uv_timer_t *t)
{
    struct proc *p = t->data;
    uint64_t now = uv_now(p->loop);
    if (now >= p->grace_deadline)
        proc__abandon_all(p);
    /* Notices stay in the outbox until sent, so a slow alert channel gets
     * only a short grace: its notice goes out after the restart. */
    if (p->alerter && (now >= p->grace_deadline || (p->in_flight == 0 && now >= p->alert_deadline)))
        alerter_abandon(p->alerter);
    if (p->in_flight > 0 || p->claiming || (p->alerter && !alerter_idle(p->alerter))) {
        uv_timer_start(t, on_grace_tick, 20, 0);
        return;
    }
    if (p->alerter)
        alerter_close(p->alerter, on_alerter_closed, p);
    else
        on_alerter_closed(p);
}

void proc_stop(struct proc *p, void (*done)(void *arg), void *arg)
{
    p->stopping = 1;
    p->stop_done = done;
    p->stop_arg = arg;
    store_on_insert(p->st, NULL, NULL);
    uv_timer_stop(&p->due_timer);
    if (p->alerter)
        alerter_stop(p->alerter);
    if (p->in_flight)
        log_info("processor.stopping", "waiting up to %llu ms for %zu deliveries in flight",
                 (unsigned long long)p->cfg->shutdown_grace_ms, p->in_flight);
    p->grace_deadline = uv_now(p->loop) + p->cfg->shutdown_grace_ms;
    p->alert_deadline = uv_now(p->loop) + ALERT_GRACE_MS;
    on_grace_tick(&p->grace_timer);
}
