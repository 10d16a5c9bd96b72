/* The mgmt thread: its loop, the HTTPS server, auth, routing and the bridge
 * to the store. Routes live in webhooks.c, requests.c, stats.c; the UI in ui.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "httpd/tls.h"
#include "mgmt/mgmt_int.h"

#define MGMT_MAX_JSON (64 * 1024)

/* ---- the answer ----------------------------------------------------------- */

static void call_end(struct mgmt_call *c)
{
    struct mgmt *m = c->m;
    cJSON_Delete(c->body);
    cJSON_Delete(c->doc);
    if (c->user_free)
        c->user_free(c->user);
    else
        free(c->user);
    free(c);
    m->in_flight--;
}

void mgmt__reply(struct mgmt_call *c, int status, const char *ctype, const char *extra,
                 const void *body, size_t len)
{
    httpd_respond(c->conn, status, ctype, extra, body, len);
    call_end(c);
}

void mgmt__reply_json(struct mgmt_call *c, int status, cJSON *doc)
{
    char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!s) {
        mgmt__reply_error(c, 500, "out of memory", NULL);
        return;
    }
    mgmt__reply(c, status, "application/json", "Cache-Control: no-store\r\n", s, strlen(s));
    cJSON_free(s);
}

void mgmt__reply_error(struct mgmt_call *c, int status, const char *msg, const char *field)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    if (field)
        cJSON_AddStringToObject(o, "field", field);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    const char *extra = status == 401 ? "WWW-Authenticate: Bearer realm=\"soldr\"\r\n" : NULL;
    mgmt__reply(c, status, "application/json", extra, s ? s : "{}", s ? strlen(s) : 2);
    cJSON_free(s);
}

/* ---- reads on the thread pool ---------------------------------------------- */

static void read_work(uv_work_t *w)
{
    struct mgmt_call *c = w->data;
    struct store_reader *rd = store_reader_get(c->m->st);
    c->status = 200;
    if (!rd) {
        c->status = 503;
        return;
    }
    c->doc = c->read_fn(rd, c, &c->status);
    store_reader_put(c->m->st, rd);
}

static void read_done(uv_work_t *w, int status)
{
    struct mgmt_call *c = w->data;
    (void)status;
    cJSON *doc = c->doc;
    c->doc = NULL;
    if (doc)
        mgmt__reply_json(c, c->status, doc);
    else if (c->status == 404)
        mgmt__reply_error(c, 404, "not found", NULL);
    else
        mgmt__reply_error(c, c->status >= 400 ? c->status : 503, "the database cannot be read",
                          NULL);
}

void mgmt__read(struct mgmt_call *c,
                cJSON *(*fn)(struct store_reader *rd, struct mgmt_call *c, int *status))
{
    c->read_fn = fn;
    c->work.data = c;
    if (uv_queue_work(&c->m->loop, &c->work, read_work, read_done) != 0)
        mgmt__reply_error(c, 503, "busy, retry", NULL);
}

/* ---- writes on the writer thread ------------------------------------------ */

/* Runs on the main loop (store callbacks): hands the result to the mgmt loop. */
static void write_done_main(void *arg, int rc)
{
    struct mgmt_call *c = arg;
    struct mgmt *m = c->m;
    c->write_rc = rc;
    pthread_mutex_lock(&m->mu);
    c->next_result = m->results;
    m->results = c;
    pthread_mutex_unlock(&m->mu);
    uv_async_send(&m->async);
}

static int write_trampoline(struct store *st, void *arg)
{
    struct mgmt_call *c = arg;
    return c->write_fn(st, c);
}

void mgmt__write(struct mgmt_call *c, store_fn fn, void (*after)(struct mgmt_call *c, int rc))
{
    c->write_fn = fn;
    c->after_write = after;
    int rc = store_call(c->m->st, write_trampoline, c, write_done_main);
    if (rc)
        mgmt__reply_error(c, 503, rc == SOLDR_EBUSY ? "busy, retry" : soldr_strerror(rc), NULL);
}

/* ---- routing ---------------------------------------------------------------- */

static int hexv(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* Percent-decodes src[0..n) into out; -1 if malformed, too long or it holds NUL. */
static int pct_decode(const char *src, size_t n, char *out, size_t cap, int plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            int a = i + 2 < n ? hexv(src[i + 1]) : -1, b = i + 2 < n ? hexv(src[i + 2]) : -1;
            if (a < 0 || b < 0 || (a == 0 && b == 0))
                return -1;
            ch = (char)(a * 16 + b);
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

int mgmt__query(const struct mgmt_call *c, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = c->query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t)(eq - p) : len;
        if (kl == nl && strncmp(p, name, nl) == 0) {
            const char *v = eq ? eq + 1 : p + len;
            size_t vl = eq ? len - kl - 1 : 0;
            return pct_decode(v, vl, out, cap, 1) == 0 ? 1 : -1;
        }
        p += len + (amp ? 1 : 0);
    }
    return 0;
}

/* Splits a path "/a/b/c" into segments in place; -1 if not absolute or too deep. */
static int segments(char *p, char *seg[], int max)
{
    int n = 0;
    if (*p != '/')
        return -1;
    while (*p == '/') {
        *p++ = '\0';
        if (n == max)
            return -1;
        seg[n++] = p;
        p += strcspn(p, "/");
    }
    return n;
}

/* Matches the path against pattern; ":x" segments are captured in c->params. */
static int match(struct mgmt_call *c, const char *pattern)
{
    char pat[128], *ps[8], *cs[8];
    snprintf(pat, sizeof pat, "%s", pattern);
    memcpy(c->path_copy, c->path, sizeof c->path_copy);
    int np = segments(pat, ps, 8), nc = segments(c->path_copy, cs, 8), k = 0;
    if (np < 0 || np != nc)
        return 0;
    for (int i = 0; i < np; i++) {
        if (ps[i][0] == ':') {
            if (cs[i][0] == '\0' || k == 4)
                return 0;
            c->params[k++] = cs[i];
        } else if (strcmp(ps[i], cs[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* 1 if a JSON text holds a NUL byte or a \u0000 escape: cJSON's strings end
 * at a NUL, so such a value would be cut short without a word. */
static int json_has_nul(const char *s, size_t n)
{
    if (memchr(s, '\0', n))
        return 1;
    for (size_t i = 0; i + 6 <= n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && strncmp(s + i + 2, "0000", 4) == 0)
            return 1;
        i++; /* skip the escaped character: "\\u0000" is text, not NUL */
    }
    return 0;
}

static const struct mgmt_route *const route_tables[] = {mgmt__webhook_routes, mgmt__request_routes,
                                                        mgmt__stats_routes};

static int authorized(const struct mgmt *m, const struct soldr_request *req)
{
    size_t len = 0, n = 0;
    const char *v = req_header_get(req, "authorization", &len, &n);
    if (!v || n != 1 || len < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return 0;
    v += 7, len -= 7;
    /* Constant time in the secret: every byte is compared whatever differs. */
    unsigned diff = (unsigned)(len ^ m->secret_len);
    for (size_t i = 0; i < m->secret_len; i++)
        diff |= (unsigned)(unsigned char)m->secret[i] ^ (unsigned char)(i < len ? v[i] : 0);
    return diff == 0;
}

static void dispatch(struct mgmt_call *c)
{
    struct mgmt *m = c->m;
    if (strcmp(c->path, "/healthz") == 0 && strcmp(c->method, "GET") == 0) {
        cJSON *o = cJSON_CreateObject();
        int ok = store_healthy(m->st);
        cJSON_AddStringToObject(o, "status", ok ? "ok" : "degraded");
        cJSON_AddStringToObject(o, "database", ok ? "ok" : "failing");
        cJSON_AddStringToObject(o, "processor", "running");
        mgmt__reply_json(c, ok ? 200 : 503, o);
        return;
    }
    int api = strncmp(c->path, "/api/", 5) == 0 || strcmp(c->path, "/metrics") == 0;
    if (!api) {
        if (!mgmt__static(c))
            mgmt__reply_error(c, 404, "no such page", NULL);
        return;
    }
    if (!authorized(m, c->req)) {
        log_warn("mgmt.unauthorized", "%s %s from %s: missing or wrong secret", c->method, c->path,
                 c->req->peer);
        mgmt__reply_error(c, 401, "missing or wrong secret", NULL);
        return;
    }
    int path_found = 0;
    for (size_t t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++) {
        for (const struct mgmt_route *r = route_tables[t]; r->pattern; r++) {
            if (!match(c, r->pattern))
                continue;
            path_found = 1;
            if (strcmp(r->method, c->method) != 0)
                continue;
            if (r->json_body) {
                const struct soldr_request *q = c->req;
                if (q->body.len > MGMT_MAX_JSON &&
                    strcmp(r->pattern, "/api/v1/requests/:id") != 0) {
                    mgmt__reply_error(c, 413, "JSON document too large", NULL);
                    return;
                }
                if (json_has_nul(req_str(q, q->body), q->body.len)) {
                    mgmt__reply_error(c, 400,
                                      "the JSON holds a NUL character (\\u0000), which is not "
                                      "supported (send such bytes as base64)",
                                      NULL);
                    return;
                }
                const char *json = req_str(q, q->body), *end = NULL;
                c->body = cJSON_ParseWithLengthOpts(json, q->body.len, &end, 0);
                /* One object and nothing after it but white space. */
                while (c->body && end && end < json + q->body.len && *end &&
                       strchr(" \t\r\n", *end))
                    end++;
                if (!cJSON_IsObject(c->body) || end != json + q->body.len) {
                    mgmt__reply_error(c, 400, "the body must be a JSON object", NULL);
                    return;
                }
            }
            r->fn(c);
            return;
        }
    }
    if (path_found)
        mgmt__reply_error(c, 405, "method not allowed on this route", NULL);
    else
        mgmt__reply_error(c, 404, "no such route", NULL);
}

void on_request_cb(void *ctx, struct httpd_conn *conn, struct soldr_request *req)
{
    struct mgmt *m = ctx;
    struct mgmt_call *c = calloc(1, sizeof *c);
    if (!c) {
        httpd_respond(conn, 503, "application/json", NULL, "{\"error\":\"out of memory\"}", 25);
        return;
    }
    c->m = m;
    c->conn = conn;
    c->req = req;
    m->in_flight++;
    snprintf(c->method, sizeof c->method, "%.*s", (int)req->method.len, req_str(req, req->method));
    const char *t = req_str(req, req->target);
    const char *qm = memchr(t, '?', req->target.len);
    size_t pl = qm ? (size_t)(qm - t) : req->target.len;
    size_t ql = qm ? req->target.len - pl - 1 : 0;
    if (pl == 0 || t[0] != '/' || ql >= sizeof c->query ||
        pct_decode(t, pl, c->path, sizeof c->path, 0) != 0) {
        mgmt__reply_error(c, 400, "bad request target", NULL);
        return;
    }
    memcpy(c->query, qm ? qm + 1 : "", ql);
    c->query[ql] = '\0';
    dispatch(c);
}
