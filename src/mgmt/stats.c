/* /api/v1/stats (JSON) and /metrics (Prometheus text format 0.0.4).
 *
 * /metrics has two sources: the counters that outlive restarts and the
 * purge (the rollups, per webhook) plus the live queue, read from the
 * database on the thread pool; and the process's own counters and
 * histograms (common/metrics.h: since start). */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "mgmt/mgmt_int.h"
#include "store/requests_api.h"

#define METRICS_MAX (16u << 20)

static cJSON *read_stats(struct store_reader *rd, struct mgmt_call *c, int *status)
{
    (void)c;
    cJSON *doc = store_read_stats(rd);
    if (!doc)
        *status = 503;
    return doc;
}

static void stats(struct mgmt_call *c)
{
    mgmt__read(c, read_stats);
}

/* ---- /metrics -------------------------------------------------------------------- */

struct metrics_job {
    struct buf text;
    int status;
};

static void metrics_job_free(void *arg)
{
    struct metrics_job *j = arg;
    if (j)
        buf_free(&j->text);
    free(j);
}

/* A label value: backslash, double quote and newline escaped. */
static int label(struct buf *out, const char *v)
{
    int rc = 0;
    for (; !rc && *v; v++)
        rc = *v == '\\'   ? buf_appends(out, "\\\\")
             : *v == '"'  ? buf_appends(out, "\\\"")
             : *v == '\n' ? buf_appends(out, "\\n")
                          : buf_append(out, v, 1);
    return rc;
}

struct family {
    const char *name, *type, *help;
    const char *field;   /* in each webhook of the stats document */
    const char *outcome; /* an extra label, or NULL */
    int first;           /* the first series of its family: write HELP and TYPE */
};

static const struct family families[] = {
    {"soldr_requests_received_total", "counter",
     "Requests stored, per webhook (kept across restarts and the purge)", "received", NULL, 1},
    {"soldr_deliveries_total", "counter",
     "Requests that reached an outcome, per webhook (kept across restarts and the purge)",
     "delivered", "delivered", 1},
    {"soldr_deliveries_total", NULL, NULL, "failed", "failed", 0},
    {"soldr_deliveries_total", NULL, NULL, "orphaned", "orphaned", 0},
    {"soldr_retries_total", "counter", "Failed attempts that were retried, per webhook", "retried",
     NULL, 1},
    {"soldr_requests_purged_total", "counter", "Requests deleted by the retention purge", "purged",
     NULL, 1},
    {"soldr_queue_pending", "gauge", "Requests not delivered yet (pending or sending), now",
     "pending", NULL, 1},
};

/* The rollup and queue series, from the /api/v1/stats document. */
static int render_stats(const cJSON *doc, struct buf *out)
{
    const cJSON *whs = cJSON_GetObjectItemCaseSensitive(doc, "webhooks"), *wh;
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof families / sizeof families[0]; i++) {
        const struct family *f = &families[i];
        if (f->first)
            rc = buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                             f->type);
        cJSON_ArrayForEach(wh, whs)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(wh, "webhook");
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(wh, f->field);
            if (rc || !cJSON_IsString(id) || !cJSON_IsNumber(v))
                continue;
            rc = buf_appendf(out, "%s{webhook=\"", f->name);
            rc = rc ? rc : label(out, id->valuestring);
            if (!rc && f->outcome)
                rc = buf_appendf(out, "\",outcome=\"%s", f->outcome);
            rc = rc ? rc : buf_appendf(out, "\"} %.0f\n", v->valuedouble);
        }
    }
    const cJSON *age = cJSON_GetObjectItemCaseSensitive(doc, "oldest_pending_age_ms");
    if (!rc)
        rc = buf_appendf(out,
                         "# HELP soldr_queue_oldest_pending_age_seconds Age of the oldest request "
                         "not delivered yet (0: none)\n"
                         "# TYPE soldr_queue_oldest_pending_age_seconds gauge\n"
                         "soldr_queue_oldest_pending_age_seconds %.3f\n",
                         cJSON_IsNumber(age) ? age->valuedouble / 1000.0 : 0.0);
    return rc;
}

static void metrics_work(uv_work_t *w)
{
    struct mgmt_call *c = w->data;
    struct metrics_job *j = c->user;
    struct store_reader *rd = store_reader_get(c->m->st);
    cJSON *doc = rd ? store_read_stats(rd) : NULL;
    store_reader_put(c->m->st, rd);
    j->status = 503;
    if (!doc)
        return;
    int rc = render_stats(doc, &j->text);
    cJSON_Delete(doc);
    if (!rc)
        rc = metrics_render(store_metrics(c->m->st), &j->text);
    if (rc)
        log_error("mgmt.metrics", "cannot render the metrics: %s", soldr_strerror(rc));
    else
        j->status = 200;
}

static void metrics_done(uv_work_t *w, int status)
{
    struct mgmt_call *c = w->data;
    struct metrics_job *j = c->user;
    (void)status;
    if (j->status != 200)
        mgmt__reply_error(c, 503, "the metrics cannot be read now", NULL);
    else
        mgmt__reply(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                    "Cache-Control: no-store\r\n", j->text.data, j->text.len);
}

static void metrics(struct mgmt_call *c)
{
    struct metrics_job *j = calloc(1, sizeof *j);
    if (!j) {
        mgmt__reply_error(c, 503, "out of memory", NULL);
        return;
    }
    buf_init(&j->text, METRICS_MAX);
    c->user = j;
    c->user_free = metrics_job_free;
    c->work.data = c;
    if (uv_queue_work(&c->m->loop, &c->work, metrics_work, metrics_done) != 0)
        mgmt__reply_error(c, 503, "busy, retry", NULL);
}

const struct mgmt_route mgmt__stats_routes[] = {
    {"GET", "/api/v1/stats", stats, 0},
    {"GET", "/metrics", metrics, 0},
    {NULL, NULL, NULL, 0},
};
