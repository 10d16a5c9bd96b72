/* httpd: the HTTP/1.1 server connection layer (llhttp on libuv), shared by
 * ingest and mgmt so there is one copy of the parsing, limits and timeouts.
 *
 * Each complete request is handed to the handler as a struct soldr_request
 * (method, target, headers in order, de-chunked body, peer, received_at).
 * httpd owns it; it stays valid until the handler calls httpd_respond() for
 * it, exactly once, now or later (after a database commit, say).
 *
 * Pipelining: while a request is with the handler the connection stops
 * reading and parsing; bytes already read wait, so answers go out in order.
 *
 * Bad input never reaches the handler: malformed HTTP -> 400, header section
 * over the limit -> 431, request target over the limit -> 414, body over the
 * limit -> 413, too slow to send a request -> 408; each closes the
 * connection after the answer. Idle keep-alive connections are closed after
 * the idle timeout; connections past the cap are closed at once. */
#ifndef SOLDR_HTTPD_H
#define SOLDR_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/errors.h"
#include "common/request.h"

struct httpd;
struct httpd_conn;

struct httpd_limits {
    size_t max_body;          /* bytes of de-chunked body */
    size_t max_header_size;   /* request line + header section */
    uint64_t read_timeout_ms; /* first byte to last byte of one request */
    uint64_t idle_timeout_ms; /* between requests on a keep-alive connection */
    size_t max_connections;
    struct tls_config *tls;   /* NULL: plain HTTP; else TLS with it (httpd/tls.h) */
    size_t max_reading_bytes; /* bytes of requests still being read, over all connections;
                                 past it: 503 (0: no limit) */
};

typedef void (*httpd_handler)(void *ctx, struct httpd_conn *conn, struct soldr_request *req);

/* Binds and listens on addr ("127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80").
 * The handler is called on the loop thread for each request. Returns 0, or a
 * UV_E* code (logged) if the address is bad or cannot be bound. */
SOLDR_MUST_USE int httpd_start(struct httpd **out, uv_loop_t *loop, const char *addr,
                               const struct httpd_limits *limits, httpd_handler handler, void *ctx);
/* Like httpd_start, on fd: a TCP socket already bound and listening (passed
 * by the service manager). The httpd owns fd from then on and closes it on
 * stop, which is harmless to the senders as long as someone else (systemd)
 * keeps a copy: the socket keeps listening, connections wait in its backlog
 * for the next process. Returns 0, or a UV_E* code (logged) if fd is not a
 * listening TCP socket. */
SOLDR_MUST_USE int httpd_start_fd(struct httpd **out, uv_loop_t *loop, int fd,
                                  const struct httpd_limits *limits, httpd_handler handler,
                                  void *ctx);
/* Stops accepting, closes idle connections after a short drain (200 ms, in
 * which a request arriving on them is still answered), lets requests being
 * read or handled finish and be answered (without keep-alive), then frees
 * everything and calls done(arg) on the loop. */
void httpd_stop(struct httpd *h, void (*done)(void *arg), void *arg);
/* The port actually bound (useful with port 0). */
int httpd_port(const struct httpd *h);

/* Answers the request the handler was given. extra_headers: NULL or
 * "Name: value\r\n" lines. Content-Length is added. The request and
 * anything the handler still referenced in it are freed on return. If the
 * client went away meanwhile the answer is dropped silently. */
void httpd_respond(struct httpd_conn *c, int status, const char *content_type,
                   const char *extra_headers, const void *body, size_t len);

#endif
