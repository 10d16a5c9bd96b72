#include "common/metrics.h"

#include <string.h>

static const double latency_bounds[METRICS_BUCKETS] = {
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};
static const double batch_bounds[METRICS_BUCKETS] = {1,   2,   4,   8,    16,   32,   64,
                                                     128, 256, 512, 1024, 2048, 4096, 8192};

void metrics_init(struct soldr_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->ingest_latency.bounds = latency_bounds;
    m->delivery_latency.bounds = latency_bounds;
    m->batch_size.bounds = batch_bounds;
}

void metrics_observe(struct metrics_hist *h, double v)
{
    int i = 0;
    while (i < METRICS_BUCKETS && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    double old = atomic_load_explicit(&h->sum, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum, &old, old + v, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

static unsigned long long get(atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static int counter(struct buf *out, const char *name, const char *help, const char *labels,
                   unsigned long long v, int header)
{
    int rc = 0;
    if (header)
        rc = buf_appendf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    return rc ? rc : buf_appendf(out, "%s%s %llu\n", name, labels, v);
}

static int hist(struct buf *out, const char *name, const char *help, struct metrics_hist *h)
{
    int rc = buf_appendf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (int i = 0; !rc && i <= METRICS_BUCKETS; i++) {
        cum += get(&h->counts[i]);
        if (i < METRICS_BUCKETS)
            rc = buf_appendf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], cum);
        else
            rc = buf_appendf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
    }
    if (!rc)
        rc = buf_appendf(out, "%s_sum %.6f\n%s_count %llu\n", name,
                         atomic_load_explicit(&h->sum, memory_order_relaxed), name, cum);
    return rc;
}

int metrics_render(struct soldr_metrics *m, struct buf *out)
{
    const char *ia = "soldr_ingest_answers_total";
    const char *ih = "Ingest answers since start, by outcome";
    const char *da = "soldr_attempts_total";
    const char *dh = "Delivery attempts since start, by outcome";
    int rc = counter(out, ia, ih, "{outcome=\"committed\"}", get(&m->ingest_committed), 1);
    if (!rc)
        rc = counter(out, ia, ih, "{outcome=\"fallback_stdout\"}", get(&m->ingest_fallback), 0);
    if (!rc)
        rc = counter(out, ia, ih, "{outcome=\"unavailable\"}", get(&m->ingest_unavailable), 0);
    if (!rc)
        rc = counter(out, "soldr_fallback_records_total",
                     "Requests written to stdout because the database failed", "",
                     get(&m->ingest_fallback), 1);
    if (!rc)
        rc = counter(out, "soldr_commits_total", "Transactions committed by the writer", "",
                     get(&m->commits), 1);
    if (!rc)
        rc = counter(out, "soldr_commit_failures_total", "Transactions that failed to commit", "",
                     get(&m->commit_failures), 1);
    if (!rc)
        rc = counter(out, da, dh, "{outcome=\"delivered\"}", get(&m->attempts_delivered), 1);
    if (!rc)
        rc = counter(out, da, dh, "{outcome=\"retry\"}", get(&m->attempts_retry), 0);
    if (!rc)
        rc = counter(out, da, dh, "{outcome=\"failed\"}", get(&m->attempts_failed), 0);
    if (!rc)
        rc = hist(out, "soldr_ingest_latency_seconds",
                  "Time from a request fully read to its durable answer", &m->ingest_latency);
    if (!rc)
        rc = hist(out, "soldr_delivery_latency_seconds", "Duration of one delivery attempt",
                  &m->delivery_latency);
    if (!rc)
        rc = hist(out, "soldr_commit_batch_size", "Writes per group commit", &m->batch_size);
    return rc;
}
