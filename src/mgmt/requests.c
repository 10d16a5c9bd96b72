/* /api/v1/requests: list, read, edit, resend, bulk resend (API.md).
 * Input is checked here, on the mgmt loop, before anything reaches the
 * store: a bad query is 400 with the field to blame, a bad document 422. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/text.h"
#include "mgmt/mgmt_int.h"
#include "store/requests_api.h"

#define Q_MAX      1024               /* the `q` filter, bytes */
#define METHOD_MAX 32                 /* an edited method, bytes */
#define TARGET_MAX 8192               /* an edited target, bytes */
#define MAX_MS     9007199254740991LL /* 2^53 - 1: what a JSON number holds exactly */

static const char *const states[] = {"pending", "sending", "delivered", "failed", "orphaned"};

static int is_state(const char *s)
{
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (strcmp(s, states[i]) == 0)
            return 1;
    return 0;
}

/* A filter with its strings (list and bulk resend). */
struct filter_args {
    struct store_filter f;
    char webhook[SOLDR_LABEL_MAX + 1], state[16], q[Q_MAX + 1];
    char cursor[SOLDR_ID_LEN + 1];
    int limit;
    long long resent;
};

static void *user_new(struct mgmt_call *c, size_t size)
{
    c->user = calloc(1, size);
    if (!c->user)
        mgmt__reply_error(c, 503, "out of memory", NULL);
    return c->user;
}

/* ---- GET /api/v1/requests ------------------------------------------------------ */

/* Decimal digits only, lo..hi; 0 and *out set, else -1. */
static int parse_int(const char *s, long long lo, long long hi, long long *out)
{
    long long v = 0;
    if (!*s || strlen(s) > 16 || strspn(s, "0123456789") != strlen(s))
        return -1;
    for (; *s; s++)
        v = v * 10 + (*s - '0');
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static const char *const list_params[] = {"webhook", "state", "from",   "to", "status",
                                          "q",       "limit", "cursor", NULL};

/* Every parameter name must be known and appear once: a misspelt filter
 * would otherwise list everything. NULL, or the name to blame. */
static const char *unknown_param(const struct mgmt_call *c, char *name, size_t cap)
{
    unsigned seen = 0;
    for (const char *p = c->query; *p;) {
        size_t len = strcspn(p, "&"), kl = strcspn(p, "=&");
        snprintf(name, cap, "%.*s", (int)kl, p);
        int i = 0;
        while (list_params[i] && strcmp(list_params[i], name) != 0)
            i++;
        if (kl && (!list_params[i] || (seen & 1u << i)))
            return name;
        seen |= 1u << i;
        p += len + (p[len] == '&');
    }
    return NULL;
}

/* Reads query parameter `name` into out; 1 if set (non-empty), 0 if not,
 * -1 after answering 400. */
static int param(struct mgmt_call *c, const char *name, char *out, size_t cap)
{
    int rc = mgmt__query(c, name, out, cap);
    if (rc < 0) {
        mgmt__reply_error(c, 400, "malformed or too long", name);
        return -1;
    }
    return rc > 0 && out[0] != '\0';
}

static int parse_list_query(struct mgmt_call *c, struct filter_args *a)
{
    char v[64], name[64];
    const char *bad = unknown_param(c, name, sizeof name);
    if (bad) {
        mgmt__reply_error(c, 400, "unknown or repeated query parameter", bad);
        return -1;
    }
    long long n;
    int rc;
    a->limit = 50;
#define BAD(field, msg)                                                                            \
    do {                                                                                           \
        mgmt__reply_error(c, 400, msg, field);                                                     \
        return -1;                                                                                 \
    } while (0)
    if ((rc = param(c, "webhook", a->webhook, sizeof a->webhook)) < 0)
        return -1;
    if (rc && !route_label_valid(a->webhook))
        BAD("webhook", "must be a webhook id (a-z, 0-9, '-')");
    a->f.webhook = rc ? a->webhook : NULL;
    if ((rc = param(c, "state", a->state, sizeof a->state)) < 0)
        return -1;
    if (rc && !is_state(a->state))
        BAD("state", "must be pending, sending, delivered, failed or orphaned");
    a->f.state = rc ? a->state : NULL;
    static const char *const nums[] = {"from", "to", "status", "limit"};
    static const long long lo[] = {0, 0, 100, 1}, hi[] = {MAX_MS, MAX_MS, 599, 500};
    for (int i = 0; i < 4; i++) {
        if ((rc = param(c, nums[i], v, sizeof v)) < 0)
            return -1;
        if (!rc)
            continue;
        if (parse_int(v, lo[i], hi[i], &n))
            BAD(nums[i], i == 2   ? "must be an HTTP status, 100..599"
                         : i == 3 ? "must be a whole number, 1..500"
                                  : "must be unix milliseconds");
        if (i == 0)
            a->f.from = n;
        else if (i == 1)
            a->f.to = n;
        else if (i == 2)
            a->f.status = (int)n;
        else
            a->limit = (int)n;
    }
    if ((rc = param(c, "q", a->q, sizeof a->q)) < 0)
        return -1;
    a->f.q = rc ? a->q : NULL;
    if ((rc = param(c, "cursor", v, sizeof v)) < 0)
        return -1;
    if (rc && !id_valid(v, strlen(v)))
        BAD("cursor", "must be the next_cursor of an earlier page");
    if (rc)
        memcpy(a->cursor, v, SOLDR_ID_LEN + 1);
#undef BAD
    return 0;
}

static cJSON *read_list(struct store_reader *rd, struct mgmt_call *c, int *status)
{
    struct filter_args *a = c->user;
    cJSON *doc = store_read_requests(rd, &a->f, a->limit, a->cursor[0] ? a->cursor : NULL);
    if (!doc)
        *status = 503;
    return doc;
}

static void list(struct mgmt_call *c)
{
    struct filter_args *a = user_new(c, sizeof *a);
    if (a && parse_list_query(c, a) == 0)
        mgmt__read(c, read_list);
}

/* ---- GET /api/v1/requests/:id ------------------------------------------------------ */

static cJSON *read_one(struct store_reader *rd, struct mgmt_call *c, int *status)
{
    return store_read_request(rd, c->params[0], status);
}

static int id_param_ok(struct mgmt_call *c)
{
    if (id_valid(c->params[0], strlen(c->params[0])))
        return 1;
    mgmt__reply_error(c, 404, "no such request", NULL);
    return 0;
}

static void get(struct mgmt_call *c)
{
    if (id_param_ok(c))
        mgmt__read(c, read_one);
}

/* ---- PATCH /api/v1/requests/:id ------------------------------------------------------ */

enum { E_METHOD = 1, E_TARGET = 2, E_HEADERS = 4, E_BODY = 8 };

struct edit {
    unsigned set;           /* E_* given in the patch */
    struct soldr_request p; /* their values */
};

static void edit_free(void *arg)
{
    struct edit *e = arg;
    if (e)
        req_free(&e->p);
    free(e);
}

static int is_token(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    return *s && strspn(s, tchar) == strlen(s);
}

/* headers: [[name, value], ...]; 0, or a message for a 422 on "headers". */
static const char *parse_headers(const cJSON *arr, struct soldr_request *r)
{
    if (!cJSON_IsArray(arr))
        return "must be an array of [name, value] pairs";
    const cJSON *pair;
    cJSON_ArrayForEach(pair, arr)
    {
        const cJSON *k = cJSON_GetArrayItem(pair, 0), *v = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(k) ||
            !cJSON_IsString(v))
            return "must be an array of [name, value] pairs of strings";
        if (!is_token(k->valuestring))
            return "a header name must be a token (letters, digits, !#$%&'*+-.^_`|~)";
        if (strpbrk(v->valuestring, "\r\n"))
            return "a header value may not hold CR or LF";
        if (req_push_header(r, k->valuestring, strlen(k->valuestring), v->valuestring,
                            strlen(v->valuestring)))
            return "too large";
    }
    return NULL;
}

/* Checks the patch and copies it into e->p; -1 after answering. */
static int parse_edit(struct mgmt_call *c, struct edit *e)
{
    const struct soldr_config *cfg = c->m->cfg;
    req_init(&e->p, cfg->max_body + cfg->max_header_size + TARGET_MAX + METHOD_MAX);
    const cJSON *it;
    int status = 422;
    const char *why = NULL, *field = NULL;
    cJSON_ArrayForEach(it, c->body)
    {
        field = it->string;
        const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
        size_t n = s ? strlen(s) : 0;
        if (strcmp(field, "method") == 0) {
            if (!s || !is_token(s) || n > METHOD_MAX)
                why = "must be an HTTP method (a token of at most 32 characters)";
            else if (req_set(&e->p, &e->p.method, s, n) == 0)
                e->set |= E_METHOD;
        } else if (strcmp(field, "target") == 0) {
            int clean = s && s[0] == '/' && n <= TARGET_MAX;
            for (size_t i = 0; clean && i < n; i++)
                clean = (unsigned char)s[i] > 0x20 && s[i] != 0x7f;
            if (!clean)
                why = "must start with '/' and hold no spaces or control characters (8 KiB "
                      "at most)";
            else if (req_set(&e->p, &e->p.target, s, n) == 0)
                e->set |= E_TARGET;
        } else if (strcmp(field, "headers") == 0) {
            why = parse_headers(it, &e->p);
            e->set |= E_HEADERS;
        } else if (strcmp(field, "body") == 0 || strcmp(field, "body_b64") == 0) {
            int b64 = field[4] == '_';
            if (e->set & E_BODY) {
                why = "give body or body_b64, not both";
            } else if (!s) {
                why = "must be a string";
            } else {
                struct buf tmp;
                buf_init(&tmp, cfg->max_body);
                int rc = b64 ? b64_decode(s, n, &tmp) : buf_append(&tmp, s, n);
                if (rc == SOLDR_ETOOBIG)
                    status = 413, why = "the body is larger than SOLDR_MAX_BODY";
                else if (rc == SOLDR_EMALFORMED)
                    why = "must be base64";
                else if (rc || req_set(&e->p, &e->p.body, tmp.data ? tmp.data : "", tmp.len))
                    status = 503, why = "out of memory";
                buf_free(&tmp);
                e->set |= E_BODY;
            }
        } else {
            why = "unknown field";
        }
        if (why)
            break;
    }
    if (!why && !e->set)
        why = "nothing to edit: give method, target, headers, body or body_b64", field = NULL;
    if (!why && (e->set & E_HEADERS)) {
        struct buf blk;
        buf_init(&blk, cfg->max_header_size);
        if (req_headers_block(&e->p, &blk))
            why = "the headers are larger than SOLDR_MAX_HEADER_SIZE", field = "headers";
        buf_free(&blk);
    }
    if (why)
        mgmt__reply_error(c, status, why, field);
    return why ? -1 : 0;
}

/* Writer thread: the current version with the patch on top becomes the edit. */
static int edit_write(struct store *st, void *arg)
{
    struct mgmt_call *c = arg;
    struct edit *e = c->user;
    const struct soldr_request *p = &e->p;
    struct soldr_request cur, out;
    req_init(&cur, (size_t)-1);
    req_init(&out, (size_t)-1);
    int rc = store_request_current(st, c->params[0], &cur);
    const struct soldr_request *m = e->set & E_METHOD ? p : &cur;
    const struct soldr_request *t = e->set & E_TARGET ? p : &cur;
    const struct soldr_request *h = e->set & E_HEADERS ? p : &cur;
    const struct soldr_request *b = e->set & E_BODY ? p : &cur;
    if (!rc)
        rc = req_set(&out, &out.method, req_str(m, m->method), m->method.len);
    if (!rc)
        rc = req_set(&out, &out.target, req_str(t, t->target), t->target.len);
    for (size_t i = 0; !rc && i < h->nheaders; i++)
        rc = req_push_header(&out, req_str(h, h->headers[i].name), h->headers[i].name.len,
                             req_str(h, h->headers[i].value), h->headers[i].value.len);
    if (!rc)
        rc = req_set(&out, &out.body, req_str(b, b->body), b->body.len);
    if (!rc)
        rc = store_request_edit(st, c->params[0], &out);
    req_free(&cur);
    req_free(&out);
    return rc;
}

static void write_failed(struct mgmt_call *c, int rc)
{
    if (rc == SOLDR_ENOTFOUND)
        mgmt__reply_error(c, 404, "no such request", NULL);
    else if (rc == SOLDR_EBUSY)
        mgmt__reply_error(c, 409, "a delivery of this request is in flight; retry when it ends",
                          NULL);
    else
        mgmt__reply_error(c, 503, "the database cannot be written now, retry", NULL);
}

static void after_edit(struct mgmt_call *c, int rc)
{
    if (rc)
        write_failed(c, rc);
    else
        mgmt__read(c, read_one); /* the answer: the request as it is now stored */
}

static void edit(struct mgmt_call *c)
{
    if (!id_param_ok(c))
        return;
    struct edit *e = user_new(c, sizeof *e);
    if (!e)
        return;
    c->user_free = edit_free;
    if (parse_edit(c, e) == 0)
        mgmt__write(c, edit_write, after_edit);
}

/* ---- POST /api/v1/requests/:id/resend ------------------------------------------------ */

static int resend_write(struct store *st, void *arg)
{
    struct mgmt_call *c = arg;
    return store_request_resend(st, c->params[0]);
}

static cJSON *read_resent(struct store_reader *rd, struct mgmt_call *c, int *status)
{
    cJSON *doc = store_read_request(rd, c->params[0], status);
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(doc, "request");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(req, "resend_requested_at");
    cJSON *o = doc || *status == 404 ? cJSON_CreateObject() : NULL;
    if (o) {
        cJSON_AddStringToObject(o, "id", c->params[0]);
        cJSON_AddStringToObject(o, "state", "pending");
        cJSON_AddNumberToObject(o, "resend_requested_at",
                                cJSON_IsNumber(at) ? at->valuedouble : (double)time_now_ms());
    }
    cJSON_Delete(doc);
    *status = 202;
    return o;
}

static void after_resend(struct mgmt_call *c, int rc)
{
    if (rc)
        write_failed(c, rc);
    else
        mgmt__read(c, read_resent);
}

static void resend(struct mgmt_call *c)
{
    if (id_param_ok(c))
        mgmt__write(c, resend_write, after_resend);
}

/* ---- POST /api/v1/requests/resend ------------------------------------------------------ */

/* The filter document; -1 after answering 422. */
static int parse_filter_doc(struct mgmt_call *c, struct filter_args *a)
{
    const cJSON *it;
    const char *why = NULL, *field = NULL;
    int all = 0;
    cJSON_ArrayForEach(it, c->body)
    {
        field = it->string;
        const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        int whole =
            cJSON_IsNumber(it) && v >= 0 && v <= (double)MAX_MS && v == (double)(long long)v;
        if (strcmp(field, "webhook") == 0) {
            if (!s || !route_label_valid(s))
                why = "must be a webhook id (a-z, 0-9, '-')";
            else
                a->f.webhook = memcpy(a->webhook, s, strlen(s) + 1);
        } else if (strcmp(field, "state") == 0) {
            if (!s || !is_state(s))
                why = "must be pending, sending, delivered, failed or orphaned";
            else
                a->f.state = memcpy(a->state, s, strlen(s) + 1);
        } else if (strcmp(field, "from") == 0 || strcmp(field, "to") == 0) {
            if (!whole)
                why = "must be unix milliseconds (a whole number)";
            else
                *(field[0] == 'f' ? &a->f.from : &a->f.to) = (long long)v;
        } else if (strcmp(field, "status") == 0) {
            if (!whole || v < 100 || v > 599)
                why = "must be an HTTP status, 100..599";
            else
                a->f.status = (int)v;
        } else if (strcmp(field, "q") == 0) {
            if (!s || strlen(s) > Q_MAX)
                why = "must be a string of at most 1024 bytes";
            else
                a->f.q = s[0] ? memcpy(a->q, s, strlen(s) + 1) : NULL;
        } else if (strcmp(field, "all") == 0) {
            if (!cJSON_IsBool(it))
                why = "must be true or false";
            all = cJSON_IsTrue(it);
        } else {
            why = "unknown field";
        }
        if (why)
            break;
    }
    const struct store_filter *f = &a->f;
    if (!why && !all && !f->webhook && !f->state && !f->from && !f->to && !f->status && !f->q)
        why = "an empty filter resends every stored request: say so with \"all\": true",
        field = "all";
    if (why)
        mgmt__reply_error(c, 422, why, field);
    return why ? -1 : 0;
}

static int bulk_write(struct store *st, void *arg)
{
    struct mgmt_call *c = arg;
    struct filter_args *a = c->user;
    long long n = store_requests_resend(st, &a->f);
    if (n < 0)
        return (int)n;
    a->resent = n;
    return 0;
}

static void after_bulk(struct mgmt_call *c, int rc)
{
    struct filter_args *a = c->user;
    if (rc) {
        write_failed(c, rc);
        return;
    }
    log_info("mgmt.bulk_resend", "%lld requests resent", a->resent);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "resent", (double)a->resent);
    mgmt__reply_json(c, 200, o);
}

static void bulk_resend(struct mgmt_call *c)
{
    struct filter_args *a = user_new(c, sizeof *a);
    if (a && parse_filter_doc(c, a) == 0)
        mgmt__write(c, bulk_write, after_bulk);
}

const struct mgmt_route mgmt__request_routes[] = {
    {"GET", "/api/v1/requests", list, 0},
    {"POST", "/api/v1/requests/resend", bulk_resend, 1},
    {"GET", "/api/v1/requests/:id", get, 0},
    {"PATCH", "/api/v1/requests/:id", edit, 1},
    {"POST", "/api/v1/requests/:id/resend", resend, 0},
    {NULL, NULL, NULL, 0},
};
