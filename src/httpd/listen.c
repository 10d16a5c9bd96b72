/* httpd's listener: binding an address or taking a passed socket,
 * accepting connections (with the connection cap), and stopping.
 * Notes:
 *  1. On stop, idle connections are not closed at once but after
 *     STOP_DRAIN_MS: a request already on its way (a keep-alive sender sends
 *     the next one as soon as it has an answer; a new connection sends its
 *     first right after the handshake) is read and answered with
 *     "Connection: close" instead of being reset unanswered. Closing at once
 *     reset about one request per restart in test_restart.py's load; what
 *     remains is HTTP/1.1's own race, a request sent just as the close goes
 *     out.
 */
#include "httpd/httpd_int.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

static void on_listener_closed(uv_handle_t *handle);

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
        httpd__conn_close(c);
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
        httpd__conn_close(c);
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
        httpd__conn_close(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &h->settings);
    c->parser.data = c;
    c->state = C_IDLE;
    httpd__arm_timer(c, h->lim.read_timeout_ms);
    httpd__start_reading(c);
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
    httpd__settings_init(&h->settings);
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

void httpd__maybe_finish_stop(struct httpd *h)
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
    httpd__maybe_finish_stop(h);
}

void httpd_stop(struct httpd *h, void (*done)(void *arg), void *arg)
{
    h->stopping = 1;
    h->stop_done = done;
    h->stop_arg = arg;
    /* Idle connections get STOP_DRAIN_MS before they close (note 1). */
    uint64_t drain =
        h->lim.idle_timeout_ms < STOP_DRAIN_MS ? h->lim.idle_timeout_ms : STOP_DRAIN_MS;
    for (struct httpd_conn *c = h->conns; c; c = c->next)
        if (c->state == C_IDLE)
            httpd__arm_timer(c, drain);
    if (h->listener_open && !uv_is_closing((uv_handle_t *)&h->listener))
        uv_close((uv_handle_t *)&h->listener, on_listener_closed);
    httpd__maybe_finish_stop(h);
}
