/* httpd: HTTP/1.1 connections on libuv with llhttp. See httpd.h.
 *
 * Connection life:
 *   accepted -> IDLE --first byte--> READING --message complete--> BUSY
 *   BUSY --httpd_respond--> IDLE (keep-alive) or closed.
 * Notes:
 *  1. At most one request per connection is with the handler (BUSY); while
 *     BUSY, bytes read are not parsed but wait in `pending`, and reading
 *     stops only once PENDING_MAX bytes wait (backpressure). Not stopping
 *     and restarting the read for every request saves two epoll_ctl calls
 *     per request.
 *  2. A conn is freed only when both handles are closed and it is not BUSY,
 *     so a handler's late httpd_respond() always finds valid memory.
 *  3. All parsing happens in conn_feed(); httpd_respond() never re-enters it
 *     while it runs (in_feed), so deep pipelines cannot recurse.
 *  4. The bytes of every header phase pass header_bytes_ok (CR without LF,
 *     obs-fold); the parser pauses at the end of each header section, so
 *     header bytes and body bytes never share one llhttp_execute call.
 */
#include "httpd/httpd_int.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

void httpd__conn_close(struct httpd_conn *c);
static void stop_reading(struct httpd_conn *c);
static void uncount(struct httpd_conn *c);
static void conn_feed(struct httpd_conn *c, const char *data, size_t len);

static const char *status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 422:
        return "Unprocessable Content";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* ---- connection memory ---------------------------------------------------- */

static void conn_free_if_done(struct httpd_conn *c)
{
    if (c->handles_open > 0 || c->state == C_BUSY)
        return;
    struct httpd *h = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    if (c->req) {
        uncount(c);
        req_free(c->req);
        free(c->req);
    }
    free(c->pending);
    tls_conn_free(c->tls);
    free(c);
    httpd__maybe_finish_stop(h);
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct httpd_conn *c = handle->data;
    c->handles_open--;
    conn_free_if_done(c);
}

void httpd__conn_close(struct httpd_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* ---- writing -------------------------------------------------------------- */

static void on_written(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct httpd_conn *c = wr->conn;
    if (status < 0 || wr->close_after)
        httpd__conn_close(c);
    free(wr);
}

/* Queues bytes for the socket as one write; closes the connection after it
 * if asked. */
static void conn_write_raw(struct httpd_conn *c, const char *head, size_t hl, const void *body,
                           size_t bl, int close_after)
{
    if (c->closing)
        return;
    struct write_req *wr = malloc(sizeof *wr + hl + bl);
    if (!wr) {
        httpd__conn_close(c);
        return;
    }
    wr->conn = c;
    wr->close_after = close_after;
    wr->len = hl + bl;
    memcpy(wr->data, head, hl);
    if (bl)
        memcpy(wr->data + hl, body, bl);
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(wr);
        httpd__conn_close(c);
    }
}

/* Queues head+body (plaintext HTTP), encrypted first on a TLS connection. */
static void conn_write(struct httpd_conn *c, const char *head, size_t hl, const void *body,
                       size_t bl, int close_after)
{
    if (!c->tls) {
        conn_write_raw(c, head, hl, body, bl, close_after);
        return;
    }
    struct buf out;
    buf_init(&out, (size_t)-1);
    int rc = tls_conn_send(c->tls, head, hl, &out);
    if (!rc && bl)
        rc = tls_conn_send(c->tls, body, bl, &out);
    if (rc)
        httpd__conn_close(c);
    else
        conn_write_raw(c, out.data, out.len, NULL, 0, close_after);
    buf_free(&out);
}

static void send_response(struct httpd_conn *c, int status, const char *ctype, const char *extra,
                          const void *body, size_t len, int close_after)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s%s\r\n",
                     status, status_text(status), len, ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "", extra ? extra : "",
                     close_after ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head) {
        httpd__conn_close(c);
        return;
    }
    conn_write(c, head, (size_t)n, body, len, close_after);
}

/* Rejects the request being read: answer, then close (the rest of the
 * stream cannot be trusted to be framed right). */
static void conn_reject(struct httpd_conn *c, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", why);
    log_debug("httpd.reject", "%d from %s: %s", status, c->peer, why);
    c->no_more = 1;
    stop_reading(c);
    uv_timer_stop(&c->timer);
    send_response(c, status, "application/json", NULL, body, (size_t)n, 1);
}

/* ---- timers --------------------------------------------------------------- */

static void on_timeout(uv_timer_t *t)
{
    struct httpd_conn *c = t->data;
    if (c->state == C_READING)
        conn_reject(c, 408, "request not received in time");
    else if (c->state == C_IDLE)
        httpd__conn_close(c);
}

void httpd__arm_timer(struct httpd_conn *c, uint64_t ms)
{
    if (!c->closing)
        uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* ---- parser callbacks ----------------------------------------------------- */

static struct httpd_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int fail(struct httpd_conn *c, int status)
{
    if (!c->error_status)
        c->error_status = status;
    return -1;
}

/* Counts the growth of the request being read against the server's budget. */
static int account(struct httpd_conn *c)
{
    struct httpd *h = c->srv;
    size_t now = c->req->data.len;
    h->reading_bytes += now - c->counted;
    c->counted = now;
    if (h->lim.max_reading_bytes && h->reading_bytes > h->lim.max_reading_bytes)
        return fail(c, 503);
    return 0;
}

static void uncount(struct httpd_conn *c)
{
    c->srv->reading_bytes -= c->counted;
    c->counted = 0;
}

static int count_header_bytes(struct httpd_conn *c, size_t len)
{
    c->header_bytes += len;
    return c->header_bytes > c->srv->lim.max_header_size ? fail(c, 431) : 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct httpd_conn *c = conn_of(p);
    struct httpd *h = c->srv;
    assert(c->req == NULL);
    c->req = malloc(sizeof *c->req);
    if (!c->req)
        return fail(c, 503);
    req_init(c->req, h->lim.max_header_size + h->lim.max_body + 64);
    memcpy(c->req->peer, c->peer, sizeof c->peer);
    c->header_bytes = 0;
    c->in_field = 0;
    c->state = C_READING;
    httpd__arm_timer(c, h->lim.read_timeout_ms);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct httpd_conn *c = conn_of(p);
    /* The request line counts towards the header section; a target that alone
     * is over the limit is 414, not 431 (count_header_bytes would say 431). */
    c->header_bytes += len;
    if (c->header_bytes > c->srv->lim.max_header_size)
        return fail(c, c->req->target.len + len > c->srv->lim.max_header_size / 2 ? 414 : 431);
    return req_extend(c->req, &c->req->target, at, len) ? fail(c, 414) : account(c);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct httpd_conn *c = conn_of(p);
    if (count_header_bytes(c, len))
        return -1;
    if (!c->in_field) {
        if (c->req->nheaders >= MAX_HEADERS || req_add_header(c->req))
            return fail(c, 431);
        c->in_field = 1;
    }
    struct req_header *hd = &c->req->headers[c->req->nheaders - 1];
    return req_extend(c->req, &hd->name, at, len) ? fail(c, 431) : account(c);
}

static int on_header_field_complete(llhttp_t *p)
{
    conn_of(p)->in_field = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct httpd_conn *c = conn_of(p);
    if (count_header_bytes(c, len))
        return -1;
    struct req_header *hd = &c->req->headers[c->req->nheaders - 1];
    return req_extend(c->req, &hd->value, at, len) ? fail(c, 431) : account(c);
}

static int on_headers_complete(llhttp_t *p)
{
    struct httpd_conn *c = conn_of(p);
    struct soldr_request *r = c->req;
    const char *m = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
    if (req_set(r, &r->method, m, strlen(m)))
        return fail(c, 431);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->lim.max_body)
        return fail(c, 413);
    /* What llhttp 8 lets through but RFC 9112 does not: an empty field name,
     * a value that still holds CR or LF (an obs-fold), and Transfer-Encoding
     * in HTTP/1.0. Each could make soldr and the destination frame the
     * request differently. */
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct req_header *h = &r->headers[i];
        if (h->name.len == 0 || memchr(req_str(r, h->value), '\r', h->value.len) ||
            memchr(req_str(r, h->value), '\n', h->value.len))
            return fail(c, 400);
    }
    if (llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 0 &&
        req_header_get(r, "transfer-encoding", NULL, NULL))
        return fail(c, 400);
    /* conn_feed checks how the header section ended (note 4), then goes on. */
    c->headers_paused = 1;
    return HPE_PAUSED;
}

/* Note 4: every byte llhttp takes in the header phase (request line and
 * header section) passes this scanner, whose state carries across reads, so
 * no split of the input can hide what it looks for:
 *  - a CR not followed by LF: llhttp 8.1 ends a header section at CR plus
 *    ANY byte (CVE-2025-23167), which lets "\r\n\rX" smuggle a request in;
 *  - an LF followed by SP or HTAB: an obs-fold line, which llhttp 8 unfolds
 *    silently (RFC 9112 §5.2 says reject; "Content-Length:\r\n 5" would
 *    frame a body and let a request be smuggled after it).
 * 0 if the bytes are clean. */
static int header_bytes_ok(struct httpd_conn *c, const char *p, const char *end)
{
    for (; p < end; p++) {
        char ch = *p;
        if ((c->scan_cr && ch != '\n') || (c->scan_lf && (ch == ' ' || ch == '\t')))
            return 0;
        c->scan_cr = ch == '\r';
        c->scan_lf = ch == '\n';
    }
    return 1;
}

static void after_headers(struct httpd_conn *c)
{
    size_t el;
    const char *expect = req_header_get(c->req, "expect", &el, NULL);
    if (expect && el == 12 && strncasecmp(expect, "100-continue", 12) == 0 &&
        llhttp_get_http_minor(&c->parser) >= 1)
        conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL, 0, 0);
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct httpd_conn *c = conn_of(p);
    struct soldr_request *r = c->req;
    if (r->body.len + len > c->srv->lim.max_body)
        return fail(c, 413);
    return req_extend(r, &r->body, at, len) ? fail(c, 413) : account(c);
}

static int on_message_complete(llhttp_t *p)
{
    struct httpd_conn *c = conn_of(p);
    c->keep_alive = llhttp_should_keep_alive(p) && !c->srv->stopping;
    c->req->received_at = time_now_ms();
    return HPE_PAUSED; /* one request at a time: conn_feed dispatches it */
}

/* The parser callbacks of every connection (listen.c sets them up). */
void httpd__settings_init(llhttp_settings_t *st)
{
    llhttp_settings_init(st);
    st->on_message_begin = on_message_begin;
    st->on_url = on_url;
    st->on_header_field = on_header_field;
    st->on_header_field_complete = on_header_field_complete;
    st->on_header_value = on_header_value;
    st->on_headers_complete = on_headers_complete;
    st->on_body = on_body;
    st->on_message_complete = on_message_complete;
}

/* ---- input ---------------------------------------------------------------- */

static void dispatch(struct httpd_conn *c)
{
    uncount(c); /* from here on the handler (and the store's queue limit) owns it */
    uv_timer_stop(&c->timer);
    c->state = C_BUSY;
    c->srv->handler(c->srv->ctx, c, c->req);
}

/* Parses data until it is used up, the connection is BUSY, or an error. Bytes
 * left over while BUSY are kept in c->pending (note 1). */
static void stop_reading(struct httpd_conn *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void conn_feed(struct httpd_conn *c, const char *data, size_t len)
{
    int continue_empty = 0; /* run the parser once more on no bytes (after a pause) */
    c->in_feed = 1;
    while ((len > 0 || continue_empty) && !c->closing && !c->no_more && c->state != C_BUSY) {
        continue_empty = 0;
        llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
        if (!c->body_phase && (err == HPE_OK || err == HPE_PAUSED) &&
            !header_bytes_ok(c, data,
                             err == HPE_OK ? data + len : llhttp_get_error_pos(&c->parser))) {
            conn_reject(c, 400, "malformed header section");
            break;
        }
        if (err == HPE_OK) {
            len = 0;
        } else if (err == HPE_PAUSED && c->headers_paused) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            c->headers_paused = 0;
            c->body_phase = 1;
            len -= (size_t)(pos - data);
            data = pos;
            llhttp_resume(&c->parser);
            after_headers(c);
            if (len == 0) /* a message without body completes without more bytes */
                continue_empty = 1;
        } else if (err == HPE_PAUSED) {
            /* message complete: the next bytes start the next header phase */
            c->body_phase = 0;
            c->scan_cr = c->scan_lf = 0;
            size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
            data += used;
            len -= used;
            llhttp_resume(&c->parser);
            dispatch(c);
        } else {
            int status = c->error_status ? c->error_status : 400;
            conn_reject(c, status,
                        status == 400   ? "malformed HTTP request"
                        : status == 413 ? "request body too large"
                        : status == 414 ? "request target too long"
                        : status == 431 ? "request header section too large"
                                        : "cannot take the request now");
            len = 0;
        }
    }
    if (len > 0 && !c->closing && !c->no_more) {
        char *keep = realloc(c->pending, c->pending_len + len);
        if (!keep) {
            httpd__conn_close(c);
        } else {
            memcpy(keep + c->pending_len, data, len);
            c->pending = keep;
            c->pending_len += len;
        }
    }
    if (c->state == C_BUSY && !c->closing && c->pending_len >= PENDING_MAX)
        stop_reading(c);
    c->in_feed = 0;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct httpd_conn *c = handle->data;
    *buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

/* Decrypts and parses: handshake records go back at once; application
 * data goes to the same parser as plain HTTP. */
static void tls_feed(struct httpd_conn *c, const char *data, size_t len)
{
    struct httpd *h = c->srv;
    struct buf out;
    buf_init(&out, (size_t)-1);
    buf_reset(&h->tls_plain);
    int rc = tls_conn_recv(c->tls, data, len, &h->tls_plain, &out);
    if (out.len)
        conn_write_raw(c, out.data, out.len, NULL, 0, rc != 0);
    else if (rc)
        httpd__conn_close(c);
    buf_free(&out);
    if (rc == 0 && h->tls_plain.len)
        conn_feed(c, h->tls_plain.data, h->tls_plain.len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct httpd_conn *c = s->data;
    if (nread < 0) {
        /* EOF or error: a half-read request is dropped (it was never answered).
         * While BUSY the answer is still due: httpd_respond reads again and
         * meets the EOF once more after the answer. */
        if (c->state != C_BUSY)
            httpd__conn_close(c);
        else
            stop_reading(c);
        return;
    }
    if (nread > 0 && c->tls)
        tls_feed(c, buf->base, (size_t)nread);
    else if (nread > 0)
        conn_feed(c, buf->base, (size_t)nread);
}

void httpd__start_reading(struct httpd_conn *c)
{
    if (c->closing || c->reading)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        httpd__conn_close(c);
    else
        c->reading = 1;
}

void httpd_respond(struct httpd_conn *c, int status, const char *content_type,
                   const char *extra_headers, const void *body, size_t len)
{
    assert(c->state == C_BUSY);
    int keep = c->keep_alive && !c->srv->stopping;
    if (!keep)
        c->no_more = 1;
    send_response(c, status, content_type, extra_headers, body, len, !keep);
    req_free(c->req);
    free(c->req);
    c->req = NULL;
    c->state = C_IDLE;
    if (c->closing) {
        conn_free_if_done(c);
        return;
    }
    if (!keep)
        return; /* closes once written */
    httpd__arm_timer(c, c->srv->lim.idle_timeout_ms);
    if (c->in_feed)
        return; /* conn_feed's loop goes on with the rest */
    char *p = c->pending;
    size_t n = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    if (p) {
        conn_feed(c, p, n);
        free(p);
    }
    if (c->state != C_BUSY)
        httpd__start_reading(c);
}
