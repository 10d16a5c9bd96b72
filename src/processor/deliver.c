/* One delivery: the outbound request built from the stored one, its
 * transfer, and the attempt record with its outcome. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/metrics.h"
#include "processor/outbound.h"
#include "processor/proc_int.h"

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    struct delivery *dv = arg;
    size_t len = size * n;
    size_t room = dv->resp_body.max - dv->resp_body.len;
    /* Beyond the cap the body is read and dropped: the answer still counts. */
    if (room && buf_append(&dv->resp_body, ptr, len < room ? len : room) != 0)
        return 0;
    return len;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *arg)
{
    struct delivery *dv = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        buf_reset(&dv->resp_headers); /* a new response (after 1xx) */
        dv->retry_after[0] = '\0';
        return len;
    }
    if (len <= 2)
        return len; /* the blank line */
    if (len > 12 && strncasecmp(ptr, "retry-after:", 12) == 0) {
        const char *v = ptr + 12;
        size_t vl = len - 12;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(dv->retry_after, sizeof dv->retry_after, "%.*s", (int)vl, v);
    }
    if (buf_append(&dv->resp_headers, ptr, len) == SOLDR_ETOOBIG)
        return len; /* keep what fits */
    return len;
}

/* Adds "Name: value" (or "Name;" for an empty value, curl's syntax). */
static int add_header(struct curl_slist **list, const char *name, size_t nl, const char *value,
                      size_t vl)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    int rc = buf_append(&b, name, nl);
    if (!rc)
        rc = vl ? buf_appendf(&b, ": %.*s", (int)vl, value) : buf_append(&b, ";", 1);
    struct curl_slist *l = rc ? NULL : curl_slist_append(*list, b.data);
    buf_free(&b);
    if (!l)
        return rc ? rc : UV_ENOMEM;
    *list = l;
    return 0;
}

static int remove_header(struct curl_slist **list, const char *name_colon)
{
    struct curl_slist *l = curl_slist_append(*list, name_colon);
    if (!l)
        return UV_ENOMEM;
    *list = l;
    return 0;
}

static int build_headers(struct delivery *dv)
{
    const struct soldr_request *r = &dv->d->req;
    int rc = 0, has_accept = 0, has_ctype = 0;
    for (size_t i = 0; i < r->nheaders && !rc; i++) {
        const struct req_header *h = &r->headers[i];
        const char *name = req_str(r, h->name);
        if (!outbound_forward_header(name, h->name.len))
            continue;
        has_accept |= h->name.len == 6 && strncasecmp(name, "accept", 6) == 0;
        has_ctype |= h->name.len == 12 && strncasecmp(name, "content-type", 12) == 0;
        rc = add_header(&dv->headers, name, h->name.len, req_str(r, h->value), h->value.len);
    }
    long long ts = dv->started_at / 1000;
    char v[128];
    /* Headers curl would add on its own are removed ("Name:" is curl's syntax
     * for that) unless the sender sent them. */
    if (!rc && !has_accept)
        rc = remove_header(&dv->headers, "Accept:");
    if (!rc && !has_ctype)
        rc = remove_header(&dv->headers, "Content-Type:");
    if (!rc)
        rc = remove_header(&dv->headers, "Expect:");
    if (!rc)
        rc = add_header(&dv->headers, "webhook-id", 10, r->id, strlen(r->id));
    if (!rc) {
        int n = snprintf(v, sizeof v, "%lld", ts);
        rc = add_header(&dv->headers, "webhook-timestamp", 17, v, (size_t)n);
    }
    if (!rc && dv->d->wh.signing_secret[0]) {
        rc = outbound_sign(dv->d->wh.signing_secret, r->id, ts, req_str(r, r->body), r->body.len, v,
                           sizeof v);
        if (!rc)
            rc = add_header(&dv->headers, "webhook-signature", 17, v, strlen(v));
    }
    return rc;
}

static void delivery_free(struct delivery *dv)
{
    struct proc *p = dv->p;
    if (dv->prev)
        dv->prev->next = dv->next;
    else if (p->active == dv)
        p->active = dv->next;
    if (dv->next)
        dv->next->prev = dv->prev;
    if (dv->easy)
        curl_easy_cleanup(dv->easy);
    curl_slist_free_all(dv->headers);
    buf_free(&dv->url);
    buf_free(&dv->resp_headers);
    buf_free(&dv->resp_body);
    store_delivery_free(dv->d);
    free(dv);
}

/* The slot is free again: another claim may go ahead. */
static void delivery_finish(struct delivery *dv)
{
    struct proc *p = dv->p;
    proc__busy_add(p, dv->d->req.webhook, -1);
    p->in_flight--;
    delivery_free(dv);
    proc__kick(p);
}

#define RERECORD_MS 1000

static void on_recorded(void *arg, int alerts)
{
    struct delivery *dv = arg;
    struct proc *p = dv->p;
    if (alerts < 0) {
        /* The database could not take the outcome (a lock, a full disk): keep
         * it and try again, so the request does not stay 'sending' (and get
         * sent twice after the next restart) over a passing fault. */
        log_warn("processor.record_failed",
                 "outcome of request %s not recorded yet (%s): trying again in %d ms",
                 dv->d->req.id, soldr_strerror(alerts), RERECORD_MS);
        dv->recording = 2;
        dv->rerecord_next = p->rerecord;
        p->rerecord = dv;
        if (!uv_is_active((uv_handle_t *)&p->rerecord_timer))
            uv_timer_start(&p->rerecord_timer, proc__rerecord, RERECORD_MS, 0);
        return;
    }
    if (alerts > 0)
        alerter_kick(p->alerter);
    delivery_finish(dv);
}

static void record(struct delivery *dv)
{
    struct proc *p = dv->p;
    dv->recording = 1;
    int rc = store_record_attempt(p->st, &dv->attempt, &p->defs, on_recorded, dv);
    if (rc)
        on_recorded(dv, rc);
}

void proc__rerecord(uv_timer_t *t)
{
    struct proc *p = t->data;
    struct delivery *dv = p->rerecord;
    p->rerecord = NULL;
    while (dv) {
        struct delivery *next = dv->rerecord_next;
        dv->rerecord_next = NULL;
        record(dv);
        dv = next;
    }
}

static void on_done(void *arg, CURL *easy, CURLcode result)
{
    struct delivery *dv = arg;
    struct proc *p = dv->p;
    const struct soldr_webhook *wh = &dv->d->wh;
    long status = 0;
    if (result == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    struct store_attempt *ap = &dv->attempt,
                         a = {
                             .seq = dv->d->seq,
                             .request_id = dv->d->req.id,
                             .webhook = dv->d->req.webhook,
                             .started_at = dv->started_at,
                             .duration_ms = (long long)((uv_hrtime() - dv->t0_ns) / 1000000),
                             .status = (int)status,
                             .resp_headers =
                                 result == CURLE_OK
                                     ? (dv->resp_headers.data ? dv->resp_headers.data : "")
                                     : NULL,
                             .resp_body = result == CURLE_OK
                                              ? (dv->resp_body.data ? dv->resp_body.data : "")
                                              : NULL,
                             .resp_body_len = dv->resp_body.len,
                             .manual = dv->d->manual,
                         };
    if (result != CURLE_OK) {
        /* In the delivery, not on this stack: the writer thread reads it later. */
        snprintf(dv->errtext, sizeof dv->errtext, "%s%s%s", curl_easy_strerror(result),
                 dv->errbuf[0] ? ": " : "", dv->errbuf);
        a.error = dv->errtext;
    }
    uint32_t n = dv->d->attempts + 1;
    long long now = time_now_ms();
    if (status >= 200 && status < 300) {
        a.outcome = STORE_OUT_DELIVERED;
    } else if (status == 410 || n >= wh->max_attempts) {
        a.outcome = STORE_OUT_FAILED;
    } else {
        a.outcome = STORE_OUT_RETRY;
        long long ra = (status == 429 || status == 503)
                           ? outbound_retry_after(dv->retry_after, now / 1000)
                           : -1;
        if (ra > 86400)
            ra = 86400;
        a.next_attempt_at =
            now + (ra >= 0 ? ra * 1000
                           : (long long)outbound_backoff_ms(n, wh->backoff_base_ms,
                                                            wh->backoff_cap_ms, proc__random(p)));
    }
    struct soldr_metrics *mx = store_metrics(p->st);
    metrics_observe(&mx->delivery_latency, (double)a.duration_ms / 1e3);
    metrics_inc(a.outcome == STORE_OUT_DELIVERED ? &mx->attempts_delivered
                : a.outcome == STORE_OUT_RETRY   ? &mx->attempts_retry
                                                 : &mx->attempts_failed);
    log_debug("processor.attempt", "request %s attempt %u: status %ld%s%s", a.request_id, n, status,
              a.error ? ", " : "", a.error ? a.error : "");
    *ap = a;
    record(dv);
}

int proc__deliver(struct proc *p, struct store_delivery *d)
{
    struct delivery *dv = calloc(1, sizeof *dv);
    if (!dv) {
        store_delivery_free(d);
        return UV_ENOMEM;
    }
    dv->p = p;
    dv->d = d;
    buf_init(&dv->url, 16 * 1024);
    buf_init(&dv->resp_headers, RESP_HEADERS_MAX);
    buf_init(&dv->resp_body, RESP_BODY_MAX);
    dv->next = p->active;
    if (p->active)
        p->active->prev = dv;
    p->active = dv;
    dv->started_at = time_now_ms();
    dv->t0_ns = uv_hrtime();
    const struct soldr_request *r = &d->req;
    int rc = outbound_url(d->wh.destination, req_str(r, r->target), r->target.len, &dv->url);
    if (!rc)
        rc = build_headers(dv);
    if (!rc && !(dv->easy = curl_easy_init()))
        rc = UV_ENOMEM;
    if (rc) {
        delivery_free(dv);
        return rc;
    }
    CURL *e = dv->easy;
    char method[32];
    snprintf(method, sizeof method, "%.*s", (int)r->method.len, req_str(r, r->method));
    curl_easy_setopt(e, CURLOPT_URL, dv->url.data);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->wh.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(d->wh.timeout_ms < 10000 ? d->wh.timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, dv->headers);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, dv->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, dv);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, dv);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (r->body.len || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
               !strcmp(method, "PATCH")) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.len ? req_str(r, r->body) : "");
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    p->in_flight++;
    proc__busy_add(p, r->webhook, +1);
    if ((rc = curluv_add(p->cu, e, on_done, dv)) != 0) {
        /* Could not even start: record it as a failed attempt so it is retried. */
        snprintf(dv->errbuf, sizeof dv->errbuf, "could not start the transfer");
        on_done(dv, e, CURLE_FAILED_INIT);
    }
    return 0;
}

void proc__abandon_all(struct proc *p)
{
    struct delivery *dv = p->active, *next;
    for (; dv; dv = next) {
        next = dv->next;
        if (dv->recording == 1)
            continue; /* the store will answer; it is freed then */
        if (dv->recording == 2) {
            log_warn("processor.abandoned",
                     "outcome of request %s still not recorded at shutdown: it will be "
                     "retried as interrupted after the restart",
                     dv->d->req.id);
            struct delivery **pp = &p->rerecord;
            while (*pp && *pp != dv)
                pp = &(*pp)->rerecord_next;
            if (*pp)
                *pp = dv->rerecord_next;
            proc__busy_add(p, dv->d->req.webhook, -1);
            p->in_flight--;
            delivery_free(dv);
            continue;
        }
        log_warn("processor.abandoned",
                 "delivery of request %s still running at shutdown: it will be retried after "
                 "the restart",
                 dv->d->req.id);
        curluv_remove(p->cu, dv->easy);
        proc__busy_add(p, dv->d->req.webhook, -1);
        p->in_flight--;
        delivery_free(dv);
    }
}
