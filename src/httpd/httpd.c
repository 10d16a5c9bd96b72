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
 *  4. On stop, idle connections are not closed at once but after
 *     STOP_DRAIN_MS: a request already on its way (a keep-alive sender sends
 *     the next one as soon as it has an answer; a new connection sends its
 *     first right after the handshake) is read and answered with
 *     "Connection: close" instead of being reset unanswered. Closing at once
 *     reset about one request per restart in test_restart.py's load; what
 *     remains is HTTP/1.1's own race, a request sent just as the close goes
 *     out.
 */
#include "httpd/httpd.h"

#include <assert.h>
#include <errno.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "httpd/tls.h"

#define READ_BUF_SIZE (64 * 1024)
#define MAX_HEADERS   256
#define PENDING_MAX   (64 * 1024)
#define STOP_DRAIN_MS 200

enum conn_state { C_IDLE, C_READING, C_BUSY };

struct httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct httpd_limits lim;
    httpd_handler handler;
    void *ctx;
    llhttp_settings_t settings;
    struct httpd_conn *conns; /* doubly linked list of open connections */
    size_t nconns;
    size_t reading_bytes;  /* arena bytes of requests being read (budget) */
    uint64_t limit_log_ms; /* last "connection limit" log line */
    size_t limit_hits;     /* connections refused since then */
    int stopping;
    int listener_open;
    void (*stop_done)(void *arg);
    void *stop_arg;
    char rbuf[READ_BUF_SIZE]; /* shared: input is parsed or copied within read_cb */
    struct buf tls_plain;     /* shared: decrypted input, used within read_cb */
};

struct httpd_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct httpd *srv;
    struct httpd_conn *prev, *next;
    llhttp_t parser;
    struct soldr_request *req; /* being read or with the handler */
    enum conn_state state;
    int handles_open;
    int closing;
    int in_feed;
    int reading;
    int headers_paused;   /* on_headers_complete paused the parser (note 4) */
    int body_phase;       /* past the header section of the current request */
    int scan_cr, scan_lf; /* header_bytes_ok's state across reads (note 4) */
    int no_more;          /* a closing answer was sent: parse nothing further */
    int in_field;         /* the current header name is still arriving */
    int keep_alive;       /* of the request with the handler */
    int error_status;     /* set by a parser callback that rejected the request */
    size_t header_bytes;
    size_t counted; /* bytes of c->req counted in srv->reading_bytes */
    char *pending;  /* bytes read but not parsed while BUSY */
    size_t pending_len;
    char peer[64];
    struct tls_conn *tls; /* NULL for plain HTTP */
};

struct write_req {
    uv_write_t req;
    struct httpd_conn *conn;
    int close_after;
    size_t len;
    char data[];
};

static void conn_close(struct httpd_conn *c);
static void on_listener_closed(uv_handle_t *handle);
static void stop_reading(struct httpd_conn *c);
static void uncount(struct httpd_conn *c);
static void conn_feed(struct httpd_conn *c, const char *data, size_t len);
static void maybe_finish_stop(struct httpd *h);

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
    maybe_finish_stop(h);
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct httpd_conn *c = handle->data;
    c->handles_open--;
    conn_free_if_done(c);
}

static void conn_close(struct httpd_conn *c)
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
        conn_close(c);
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
        conn_close(c);
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
        conn_close(c);
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
        conn_close(c);
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
        conn_close(c);
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
        conn_close(c);
}

static void arm_timer(struct httpd_conn *c, uint64_t ms)
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
    arm_timer(c, h->lim.read_timeout_ms);
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
            conn_close(c);
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
        conn_close(c);
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
            conn_close(c);
        else
            stop_reading(c);
        return;
    }
    if (nread > 0 && c->tls)
        tls_feed(c, buf->base, (size_t)nread);
    else if (nread > 0)
        conn_feed(c, buf->base, (size_t)nread);
}

static void start_reading(struct httpd_conn *c)
{
    if (c->closing || c->reading)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
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
    arm_timer(c, c->srv->lim.idle_timeout_ms);
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
        start_reading(c);
}

/* ---- accepting ------------------------------------------------------------ */

static void on_connection(uv_stream_t *server, int status)
{
    struct httpd *h = server->data;
    if (status < 0) {
        log_warn("httpd.accept", "accept failed: %s", uv_strerror(status));
        return;
    }
    struct httpd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return; /* the connection stays in the backlog; retried on the next event */
    c->srv = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (h->nconns > h->lim.max_connections || h->stopping) {
        /* One line per 10 s at most: a flood of connections must not flood the log. */
        uint64_t now = uv_now(h->loop);
        h->limit_hits++;
        if (!h->stopping && now - h->limit_log_ms >= 10000) {
            log_warn("httpd.conn_limit",
                     "connection limit %zu reached: %zu new connections closed at once",
                     h->lim.max_connections, h->limit_hits);
            h->limit_log_ms = now;
            h->limit_hits = 0;
        }
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
    if (h->lim.tls && !(c->tls = tls_conn_new(h->lim.tls))) {
        conn_close(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &h->settings);
    c->parser.data = c;
    c->state = C_IDLE;
    arm_timer(c, h->lim.read_timeout_ms);
    start_reading(c);
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || strlen(addr) >= sizeof host)
        return UV_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return UV_EINVAL;
    size_t hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl > 2 && addr[hl - 1] == ']') {
        memcpy(host, addr + 1, hl - 2);
        host[hl - 2] = '\0';
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
    }
    memcpy(host, addr, hl);
    host[hl] = '\0';
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

/* The server without its listener (httpd_start*, then listen_or_fail). */
static struct httpd *httpd_new(uv_loop_t *loop, const struct httpd_limits *limits,
                               httpd_handler handler, void *ctx)
{
    struct httpd *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->loop = loop;
    h->lim = *limits;
    buf_init(&h->tls_plain, READ_BUF_SIZE * 2);
    h->handler = handler;
    h->ctx = ctx;
    llhttp_settings_init(&h->settings);
    h->settings.on_message_begin = on_message_begin;
    h->settings.on_url = on_url;
    h->settings.on_header_field = on_header_field;
    h->settings.on_header_field_complete = on_header_field_complete;
    h->settings.on_header_value = on_header_value;
    h->settings.on_headers_complete = on_headers_complete;
    h->settings.on_body = on_body;
    h->settings.on_message_complete = on_message_complete;
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->listener_open = 1;
    return h;
}

/* rc: the result of binding or opening the listener. Listens if it is 0;
 * on failure the caller still calls httpd_stop(), which completes once the
 * listener handle has closed. */
static int listen_or_fail(struct httpd *h, int rc, const char *what)
{
    /* On a passed socket this listen() only sets the backlog again. */
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&h->listener, 4096, on_connection);
    if (rc) {
        log_error("httpd.listen", "cannot listen on %s: %s", what, uv_strerror(rc));
        h->stopping = 1;
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    }
    return rc;
}

int httpd_start(struct httpd **out, uv_loop_t *loop, const char *addr,
                const struct httpd_limits *limits, httpd_handler handler, void *ctx)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int rc = parse_addr(addr, &ss);
    if (rc) {
        log_error("httpd.listen", "bad listen address '%s' (want host:port, [v6]:port)", addr);
        return rc;
    }
    struct httpd *h = httpd_new(loop, limits, handler, ctx);
    if (!h)
        return UV_ENOMEM;
    *out = h;
    rc = listen_or_fail(h, uv_tcp_bind(&h->listener, (struct sockaddr *)&ss, 0), addr);
    if (!rc)
        log_info("httpd.listen", "listening on %s", addr);
    return rc;
}

/* 0 if fd is a listening TCP socket (IPv4 or IPv6), else UV_EINVAL or the
 * errno code of the failed check; its address goes to name. */
static int check_listening(int fd, char *name, size_t name_size)
{
    int type = 0, acc = 0;
    socklen_t len = sizeof type;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return uv_translate_sys_error(errno);
    len = sizeof acc;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0)
        return uv_translate_sys_error(errno);
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
    else if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    snprintf(name, name_size, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
             ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port));
    if (type != SOCK_STREAM || !acc || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return UV_EINVAL;
    return 0;
}

int httpd_start_fd(struct httpd **out, uv_loop_t *loop, int fd, const struct httpd_limits *limits,
                   httpd_handler handler, void *ctx)
{
    char name[INET6_ADDRSTRLEN + 16];
    int rc = check_listening(fd, name, sizeof name);
    if (rc) {
        log_error("httpd.listen", "passed fd %d is not a listening TCP socket: %s", fd,
                  rc == UV_EINVAL ? "wrong type, family or state" : uv_strerror(rc));
        return rc;
    }
    struct httpd *h = httpd_new(loop, limits, handler, ctx);
    if (!h)
        return UV_ENOMEM;
    *out = h;
    rc = listen_or_fail(h, uv_tcp_open(&h->listener, fd), name);
    if (!rc)
        log_info("httpd.listen", "listening on %s (socket fd %d passed by the service manager)",
                 name, fd);
    return rc;
}

int httpd_port(const struct httpd *h)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

static void maybe_finish_stop(struct httpd *h)
{
    if (!h->stopping || h->listener_open || h->nconns > 0 || !h->stop_done)
        return;
    void (*done)(void *) = h->stop_done;
    void *arg = h->stop_arg;
    buf_free(&h->tls_plain);
    free(h);
    done(arg);
}

static void on_listener_closed(uv_handle_t *handle)
{
    struct httpd *h = handle->data;
    h->listener_open = 0;
    maybe_finish_stop(h);
}

void httpd_stop(struct httpd *h, void (*done)(void *arg), void *arg)
{
    h->stopping = 1;
    h->stop_done = done;
    h->stop_arg = arg;
    /* Idle connections get STOP_DRAIN_MS before they close (note 4). */
    uint64_t drain =
        h->lim.idle_timeout_ms < STOP_DRAIN_MS ? h->lim.idle_timeout_ms : STOP_DRAIN_MS;
    for (struct httpd_conn *c = h->conns; c; c = c->next)
        if (c->state == C_IDLE)
            arm_timer(c, drain);
    if (h->listener_open && !uv_is_closing((uv_handle_t *)&h->listener))
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    maybe_finish_stop(h);
}
