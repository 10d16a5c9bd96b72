#include "uiproxy/uiproxy.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "common/buf.h"
#include "common/log.h"
#include "httpc/curluv.h"
#include "httpd/httpd.h"
#include "mgmt/mgmt.h"

#define PROXY_BODY_MAX (32u << 20)

struct proxy {
    const struct uiproxy_opts *o;
    const struct soldr_config *cfg;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct httpd *httpd;
    struct curluv *cu;
    int in_flight, stopping;
};

struct fwd {
    struct proxy *px;
    struct httpd_conn *conn;
    CURL *easy;
    struct curl_slist *headers;
    struct buf url, body;
    char ctype[128];
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct fwd *f = arg;
    return buf_append(&f->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct fwd *f = arg;
    size_t len = size * n;
    if (len > 13 && strncasecmp(p, "content-type:", 13) == 0) {
        const char *v = p + 13;
        size_t vl = len - 13;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
            vl--;
        snprintf(f->ctype, sizeof f->ctype, "%.*s", (int)vl, v);
    }
    return len;
}

static void fwd_free(struct fwd *f)
{
    if (f->easy)
        curl_easy_cleanup(f->easy);
    curl_slist_free_all(f->headers);
    buf_free(&f->url);
    buf_free(&f->body);
    f->px->in_flight--;
    free(f);
}

static void on_done(void *arg, CURL *easy, CURLcode result)
{
    struct fwd *f = arg;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (result != CURLE_OK || status < 100) {
        char msg[CURL_ERROR_SIZE + 96];
        int n = snprintf(msg, sizeof msg, "{\"error\":\"the management API cannot be reached\"}");
        log_warn("ui.proxy", "API call failed: %s%s%s", curl_easy_strerror(result),
                 f->errbuf[0] ? ": " : "", f->errbuf);
        httpd_respond(f->conn, 502, "application/json", NULL, msg, (size_t)n);
    } else {
        httpd_respond(f->conn, (int)status, f->ctype[0] ? f->ctype : NULL,
                      "Cache-Control: no-store\r\n", f->body.data, f->body.len);
    }
    fwd_free(f);
}

static int add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n)
        return -1;
    *l = n;
    return 0;
}

/* Copies one request header along when the API needs it. */
static int pass_header(struct fwd *f, const struct soldr_request *r, const char *name)
{
    size_t len;
    const char *v = req_header_get(r, name, &len, NULL);
    if (!v)
        return 0;
    struct buf b;
    buf_init(&b, 64 * 1024);
    int rc = buf_appendf(&b, "%s: %.*s", name, (int)len, v);
    if (!rc)
        rc = add_header(&f->headers, b.data);
    buf_free(&b);
    return rc;
}

static void forward(struct proxy *px, struct httpd_conn *conn, struct soldr_request *r)
{
    struct fwd *f = calloc(1, sizeof *f);
    if (!f) {
        httpd_respond(conn, 503, "application/json", NULL, "{\"error\":\"out of memory\"}", 25);
        return;
    }
    px->in_flight++;
    f->px = px;
    f->conn = conn;
    buf_init(&f->url, 16 * 1024);
    buf_init(&f->body, PROXY_BODY_MAX);
    size_t al = strlen(px->o->api);
    while (al && px->o->api[al - 1] == '/')
        al--;
    int rc = buf_append(&f->url, px->o->api, al);
    if (!rc)
        rc = buf_append(&f->url, req_str(r, r->target), r->target.len);
    if (!rc)
        rc = pass_header(f, r, "Content-Type");
    if (!rc)
        rc = pass_header(f, r, "Accept");
    if (!rc && px->o->secret) {
        struct buf b;
        buf_init(&b, 1024);
        rc = buf_appendf(&b, "Authorization: Bearer %s", px->o->secret);
        if (!rc)
            rc = add_header(&f->headers, b.data);
        memset(b.data ? b.data : "", 0, b.data ? b.len : 0);
        buf_free(&b);
    } else if (!rc) {
        rc = pass_header(f, r, "Authorization");
    }
    if (!rc)
        rc = add_header(&f->headers, "Expect:");
    if (rc || !(f->easy = curl_easy_init())) {
        httpd_respond(conn, 503, "application/json", NULL, "{\"error\":\"out of memory\"}", 25);
        fwd_free(f);
        return;
    }
    char method[16];
    snprintf(method, sizeof method, "%.*s", (int)r->method.len, req_str(r, r->method));
    CURL *e = f->easy;
    curl_easy_setopt(e, CURLOPT_URL, f->url.data);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
    if (px->o->cafile)
        curl_easy_setopt(e, CURLOPT_CAINFO, px->o->cafile);
    if (px->o->insecure || px->o->cafile) {
        /* A self-signed certificate names no host: trust it by its bytes. */
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (px->o->insecure)
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    if (r->body.len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
        strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.len ? req_str(r, r->body) : "");
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (curluv_add(px->cu, e, on_done, f) != 0) {
        httpd_respond(conn, 503, "application/json", NULL, "{\"error\":\"busy\"}", 16);
        fwd_free(f);
    }
}

static void on_request(void *ctx, struct httpd_conn *conn, struct soldr_request *r)
{
    struct proxy *px = ctx;
    const char *t = req_str(r, r->target);
    size_t pl = strcspn(t, "?");
    if (pl > r->target.len)
        pl = r->target.len;
    if ((pl >= 5 && strncmp(t, "/api/", 5) == 0) || (pl == 8 && strncmp(t, "/metrics", 8) == 0)) {
        forward(px, conn, r);
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%.*s", (int)(pl < sizeof path - 1 ? pl : sizeof path - 1), t);
    char *data;
    size_t len;
    const char *ctype;
    if ((r->method.len == 3 && strncmp(req_str(r, r->method), "GET", 3) == 0) &&
        mgmt_ui_file(px->cfg->ui_dir, path, &data, &len, &ctype)) {
        httpd_respond(conn, 200, ctype, mgmt_ui_headers, data, len);
        free(data);
        return;
    }
    httpd_respond(conn, 404, "application/json", NULL, "{\"error\":\"no such page\"}", 24);
}

static void on_httpd_stopped(void *arg)
{
    struct proxy *px = arg;
    px->httpd = NULL;
    curluv_close(px->cu);
    uv_close((uv_handle_t *)&px->sigint, NULL);
    uv_close((uv_handle_t *)&px->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct proxy *px = h->data;
    (void)signum;
    if (px->stopping++)
        return;
    log_info("ui.stopping", "stopping");
    httpd_stop(px->httpd, on_httpd_stopped, px);
}

int uiproxy_run(const struct uiproxy_opts *o, const struct soldr_config *cfg)
{
    struct proxy px;
    memset(&px, 0, sizeof px);
    px.o = o;
    px.cfg = cfg;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    uv_loop_init(&px.loop);
    if (curluv_init(&px.cu, &px.loop, 64) != 0)
        return 1;
    struct httpd_limits lim = {
        .max_body = cfg->max_body + 64 * 1024,
        .max_header_size = cfg->max_header_size,
        .read_timeout_ms = cfg->read_timeout_ms,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .max_connections = 256,
    };
    int rc = httpd_start(&px.httpd, &px.loop, o->listen, &lim, on_request, &px);
    uv_signal_init(&px.loop, &px.sigint);
    uv_signal_init(&px.loop, &px.sigterm);
    px.sigint.data = px.sigterm.data = &px;
    if (rc) {
        px.stopping = 1;
        if (px.httpd)
            httpd_stop(px.httpd, on_httpd_stopped, &px);
        else
            on_httpd_stopped(&px);
    } else {
        uv_signal_start(&px.sigint, on_signal, SIGINT);
        uv_signal_start(&px.sigterm, on_signal, SIGTERM);
        int loopback = strncmp(o->listen, "127.", 4) == 0 || strncmp(o->listen, "[::1]", 5) == 0 ||
                       strncmp(o->listen, "localhost:", 10) == 0;
        if (o->secret && !loopback)
            log_warn("ui.exposed",
                     "listening on %s, not loopback, while holding the management secret: "
                     "anyone who reaches this address can use the API",
                     o->listen);
        log_info("ui.ready", "UI on http://%s/ for the API at %s (%s)", o->listen, o->api,
                 o->secret ? "this process adds the secret: keep it on loopback"
                           : "sign in with the secret");
    }
    uv_run(&px.loop, UV_RUN_DEFAULT);
    uv_loop_close(&px.loop);
    curl_global_cleanup();
    return rc ? 1 : 0;
}
