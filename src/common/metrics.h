/* In-process metrics for /metrics: counters and fixed-bucket histograms
 * updated with relaxed atomics from any thread (loop, writer, mgmt), read by
 * the mgmt thread. One instance lives in the store (store_metrics), the
 * one object every task already holds. */
#ifndef SOLDR_METRICS_H
#define SOLDR_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/buf.h"

#define METRICS_BUCKETS 14

struct metrics_hist {
    const double *bounds;                      /* METRICS_BUCKETS upper bounds, ascending */
    atomic_ullong counts[METRICS_BUCKETS + 1]; /* the last one: +Inf */
    atomic_ullong count;
    _Atomic double sum;
};

struct soldr_metrics {
    atomic_ullong ingest_committed;   /* answered 200 after a commit */
    atomic_ullong ingest_fallback;    /* answered 200 after the stdout fallback */
    atomic_ullong ingest_unavailable; /* answered 503 */
    atomic_ullong commits, commit_failures;
    atomic_ullong attempts_delivered, attempts_retry, attempts_failed;
    struct metrics_hist ingest_latency;   /* seconds: request read -> durable */
    struct metrics_hist delivery_latency; /* seconds: one attempt */
    struct metrics_hist batch_size;       /* jobs per commit */
};

void metrics_init(struct soldr_metrics *m);
void metrics_observe(struct metrics_hist *h, double v);
static inline void metrics_inc(atomic_ullong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}
/* Appends the Prometheus text of every metric (with HELP and TYPE lines). */
int metrics_render(struct soldr_metrics *m, struct buf *out);

#endif
