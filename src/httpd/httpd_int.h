/* Internals shared by httpd.c (connections: parsing, answers, timeouts)
 * and listen.c (binding, accepting, stopping). Not for other modules. */
#ifndef SOLDR_HTTPD_INT_H
#define SOLDR_HTTPD_INT_H

#include <llhttp.h>

#include "httpd/httpd.h"
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

/* httpd.c */
void httpd__conn_close(struct httpd_conn *c);
void httpd__arm_timer(struct httpd_conn *c, uint64_t ms);
void httpd__start_reading(struct httpd_conn *c);
void httpd__settings_init(llhttp_settings_t *settings);
/* listen.c: frees the server once stopping, closed and without connections. */
void httpd__maybe_finish_stop(struct httpd *h);

#endif
