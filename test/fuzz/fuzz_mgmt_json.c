/* fuzz_mgmt_json: the JSON (and query) input of the mgmt API's write routes,
 * straight into the real router and handlers (on_request_cb in
 * src/mgmt/server.c), without a socket or the HTTP parser: fast, and every
 * input reaches the validation code.
 *
 * Input: byte 0 picks a route (routes[] below), the rest is the body (a
 * JSON document) or, for the list route, the query string. The harness adds
 * the secret and passes the request to on_request_cb. httpd_respond is
 * replaced by the one below (a link seam: this target does not link
 * httpd.o), which records the answer and frees the request as httpd does.
 * Reads run on the thread pool and writes on the store's writer thread, as
 * in soldr.
 *
 * Checks:
 *  1. exactly one answer per call, with a status the API documents for
 *     client input (no 5xx), JSON, errors carrying "error";
 *  2. nothing invalid is stored: after a 2xx on a webhook route the stored
 *     webhook passes store_webhook_validate; after a 200 on a request edit
 *     the version to deliver has a token method, a clean target, token
 *     header names and header values without CR, LF or NUL (no header
 *     injection downstream);
 *  3. an edit stores what was asked: each field given in the document (once)
 *     is what the store then delivers. */
#include <cjson/cJSON.h>
#include <string.h>

#include "common/text.h"
#include "fuzz_mgmt_env.h"
#include "store/requests_api.h"

#define RESET_EVERY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct route {
    const char *method, *target;
    int json;
} routes[] = {
    {"POST", "/api/v1/webhooks", 1},
    {"PUT", "/api/v1/webhooks/" FUZZ_WEBHOOK, 1},
    {"PATCH", "/api/v1/webhooks/" FUZZ_WEBHOOK, 1},
    {"PATCH", "/api/v1/requests/" FUZZ_REQ_ID, 1},
    {"POST", "/api/v1/requests/resend", 1},
    {"GET", "/api/v1/requests?", 0},
};
#define NROUTES (sizeof routes / sizeof routes[0])

static struct fuzz_mgmt E;

static void env_down(void)
{
    fuzz_mgmt_down(&E);
}

/* ---- the seam: httpd's answer ------------------------------------------------- */

struct httpd_conn {
    int answers;
    int status;
    char ctype[128];
    struct buf body;
    struct soldr_request *req;
};

void httpd_respond(struct httpd_conn *c, int status, const char *content_type,
                   const char *extra_headers, const void *body, size_t len)
{
    (void)extra_headers;
    c->answers++;
    c->status = status;
    snprintf(c->ctype, sizeof c->ctype, "%s", content_type ? content_type : "");
    buf_reset(&c->body);
    FUZZ_CHECK(buf_append(&c->body, len ? body : "", len) == 0, "answer too large");
    /* httpd frees the request once it is answered. */
    FUZZ_CHECK(c->req, "httpd_respond called twice for one request");
    req_free(c->req);
    free(c->req);
    c->req = NULL;
}

/* ---- checks ------------------------------------------------------------------ */

static int is_token(const char *s, size_t n)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(tchar, s[i]))
            return 0;
    return 1;
}

static void check_webhook_stored(const char *id)
{
    struct store_reader *rd = store_reader_get(E.st);
    FUZZ_CHECK(rd, "store_reader_get");
    struct soldr_webhook wh;
    int rc = store_read_webhook(rd, id, &wh);
    store_reader_put(E.st, rd);
    FUZZ_CHECK(rc == 0, "webhook %s answered 2xx but cannot be read back: %d", id, rc);
    const char *field = NULL, *why = NULL;
    FUZZ_CHECK(store_webhook_validate(&wh, &field, &why) == 0,
               "webhook %s was stored invalid: %s %s", id, field, why ? why : "");
}

/* The version of the seed request the processor would deliver, read on the
 * writer thread (store_request_current is a writer-connection function). */
static struct soldr_request current;
static int current_rc, current_done;

static int read_current(struct store *st, void *arg)
{
    (void)arg;
    return store_request_current(st, FUZZ_REQ_ID, &current);
}

static void on_current(void *arg, int rc)
{
    (void)arg;
    current_rc = rc;
    current_done = 1;
}

/* The last member named `name` of an object, and how many there are
 * (the handlers take members in order, so with duplicates the last wins). */
static const cJSON *member(const cJSON *o, const char *name, int *count)
{
    const cJSON *it, *found = NULL;
    *count = 0;
    cJSON_ArrayForEach(it, o)
    {
        if (it->string && strcmp(it->string, name) == 0)
            found = it, (*count)++;
    }
    return found;
}

static void expect_span(const struct soldr_request *r, struct span s, const char *want, size_t wl,
                        const char *what)
{
    FUZZ_CHECK(s.len == wl && memcmp(req_str(r, s), want, wl) == 0,
               "the edit stored %s \"%.*s\" where the document said \"%.*s\"", what,
               (int)(s.len > 200 ? 200 : s.len), req_str(r, s), (int)(wl > 200 ? 200 : wl), want);
}

static void check_edit_stored(const cJSON *doc)
{
    req_free(&current);
    req_init(&current, (size_t)-1);
    current_done = 0;
    FUZZ_CHECK(store_call(E.st, read_current, NULL, on_current) == 0, "store_call");
    while (!current_done)
        uv_run(E.loop, UV_RUN_ONCE);
    FUZZ_CHECK(current_rc == 0, "store_request_current after an edit: %d", current_rc);
    const struct soldr_request *r = &current;
    FUZZ_CHECK(is_token(req_str(r, r->method), r->method.len), "stored method is not a token: %.*s",
               (int)r->method.len, req_str(r, r->method));
    const char *t = req_str(r, r->target);
    FUZZ_CHECK(r->target.len && t[0] == '/', "stored target does not start with '/'");
    for (size_t i = 0; i < r->target.len; i++)
        FUZZ_CHECK((unsigned char)t[i] > 0x20 && t[i] != 0x7f,
                   "stored target holds a space or control byte 0x%02x", (unsigned char)t[i]);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct req_header *h = &r->headers[i];
        FUZZ_CHECK(is_token(req_str(r, h->name), h->name.len), "stored header name not a token");
        const char *v = req_str(r, h->value);
        for (size_t k = 0; k < h->value.len; k++)
            FUZZ_CHECK(v[k] != '\r' && v[k] != '\n' && v[k] != '\0',
                       "stored header %.*s holds CR, LF or NUL: header injection downstream",
                       (int)h->name.len, req_str(r, h->name));
    }
    /* 3. what was asked is what is stored (members given once). */
    int n;
    const cJSON *j;
    if ((j = member(doc, "method", &n)) && n == 1)
        expect_span(r, r->method, j->valuestring, strlen(j->valuestring), "method");
    if ((j = member(doc, "target", &n)) && n == 1)
        expect_span(r, r->target, j->valuestring, strlen(j->valuestring), "target");
    if ((j = member(doc, "body", &n)) && n == 1)
        expect_span(r, r->body, j->valuestring, strlen(j->valuestring), "body");
    if ((j = member(doc, "body_b64", &n)) && n == 1) {
        struct buf b;
        buf_init(&b, (size_t)-1);
        FUZZ_CHECK(b64_decode(j->valuestring, strlen(j->valuestring), &b) == 0,
                   "an edit with bad base64 was accepted");
        expect_span(r, r->body, b.data ? b.data : "", b.len, "body");
        buf_free(&b);
    }
    if ((j = member(doc, "headers", &n)) && n == 1) {
        FUZZ_CHECK((size_t)cJSON_GetArraySize(j) == r->nheaders,
                   "the edit stored %zu headers where the document gave %d", r->nheaders,
                   cJSON_GetArraySize(j));
        size_t i = 0;
        const cJSON *pair;
        cJSON_ArrayForEach(pair, j)
        {
            const char *k = cJSON_GetArrayItem(pair, 0)->valuestring;
            const char *v = cJSON_GetArrayItem(pair, 1)->valuestring;
            expect_span(r, r->headers[i].name, k, strlen(k), "a header name");
            expect_span(r, r->headers[i].value, v, strlen(v), "a header value");
            i++;
        }
    }
}

static void check_answer(const struct route *rt, const struct httpd_conn *c, const uint8_t *body,
                         size_t len)
{
    static const int allowed[] = {200, 201, 202, 204, 400, 404, 405, 409, 413, 422};
    int ok = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        ok |= c->status == allowed[i];
    FUZZ_CHECK(ok, "%s %s: unexpected status %d: %.*s", rt->method, rt->target, c->status,
               (int)c->body.len, c->body.data);
    FUZZ_CHECK(strncmp(c->ctype, "application/json", 16) == 0, "%d answer of type %s", c->status,
               c->ctype);
    cJSON *doc = cJSON_ParseWithLength(c->body.data, c->body.len);
    FUZZ_CHECK(cJSON_IsObject(doc), "a %d answer is not a JSON object: %.*s", c->status,
               (int)c->body.len, c->body.data);
    if (c->status >= 400) {
        FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "error")),
                   "a %d without an error message", c->status);
    } else if (rt == &routes[0] || rt == &routes[1] || rt == &routes[2]) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
        FUZZ_CHECK(cJSON_IsString(id), "a webhook answer without an id");
        check_webhook_stored(id->valuestring);
    } else if (rt == &routes[3]) {
        cJSON *in = cJSON_ParseWithLength((const char *)body, len);
        FUZZ_CHECK(cJSON_IsObject(in), "an edit that is not a JSON object was accepted");
        check_edit_stored(in);
        cJSON_Delete(in);
    }
    cJSON_Delete(doc);
}

/* ---- the input ---------------------------------------------------------------- */

/* The request httpd would hand over: the secret, and the target percent-encoded
 * where llhttp would not pass a byte through. NULL if it cannot be built. */
static struct soldr_request *make_request(const struct route *rt, const uint8_t *p, size_t n)
{
    struct soldr_request *r = malloc(sizeof *r);
    FUZZ_CHECK(r, "malloc");
    req_init(r, 1u << 20);
    static const char auth[] = "Bearer " FUZZ_SECRET;
    int rc = req_set(r, &r->method, rt->method, strlen(rt->method)) ||
             req_set(r, &r->target, rt->target, strlen(rt->target));
    for (size_t i = 0; !rc && !rt->json && i < n; i++) {
        char enc[4];
        int keep = p[i] > 0x20 && p[i] < 0x7f && p[i] != '#';
        snprintf(enc, sizeof enc, keep ? "%c" : "%%%02X", p[i]);
        rc = req_extend(r, &r->target, enc, strlen(enc));
    }
    rc = rc || req_push_header(r, "Host", 4, "admin", 5) ||
         req_push_header(r, "Authorization", 13, auth, sizeof auth - 1);
    if (!rc && rt->json)
        rc = req_push_header(r, "Content-Type", 12, "application/json", 16) ||
             req_set(r, &r->body, n ? (const char *)p : "", n);
    FUZZ_CHECK(!rc, "building the request");
    snprintf(r->peer, sizeof r->peer, "127.0.0.1:1");
    r->received_at = 1;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!E.up) {
        static int once;
        if (!once++) {
            fuzz_process_init();
            atexit(env_down);
        }
        fuzz_mgmt_up(&E, 0);
    }
    const struct route *rt = &routes[data[0] % NROUTES];
    static struct httpd_conn conn;
    conn.answers = 0;
    if (!conn.body.max)
        buf_init(&conn.body, 64u << 20);
    conn.req = make_request(rt, data + 1, size - 1);
    on_request_cb(E.m, &conn, conn.req);
    while (!conn.answers)
        uv_run(E.loop, UV_RUN_ONCE);
    uv_run(E.loop, UV_RUN_NOWAIT);
    FUZZ_CHECK(conn.answers == 1 && E.m->in_flight == 0, "%d answers, %d calls in flight",
               conn.answers, E.m->in_flight);
    if (fuzz_verbose())
        fprintf(stderr, "%s %s -> %d %.*s\n", rt->method, rt->target, conn.status,
                (int)(conn.body.len > 160 ? 160 : conn.body.len), conn.body.data);
    check_answer(rt, &conn, data + 1, size - 1);
    static unsigned inputs;
    if (++inputs % RESET_EVERY == 0)
        fuzz_mgmt_down(&E);
    return 0;
}
