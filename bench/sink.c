/* bench/sink.c - the receiving end for bench/deliver: a one-thread epoll HTTP/1.1
 * server that answers every request `200 ok` at once, keeps connections alive,
 * and notes when each delivery arrived.
 *
 *   cc -O2 -o sink bench/sink.c
 *   sink -p PORT [-a 127.0.0.1] [-o LOG] [-s STATS]
 *
 * For each request that carries a `webhook-id` header it keeps, in memory, the
 * CLOCK_REALTIME time (ns) at which the read that completed the request
 * returned, and the id; on SIGTERM or SIGINT it writes them to LOG as
 * "<ns> <id>" lines, writes counters to STATS as "key=value" lines, and exits
 * 0. Requests without a webhook-id (wrk's) are answered the same way, only
 * counted. Bodies need Content-Length (what curl and wrk send); a chunked
 * request gets 501 and the connection is closed.
 *
 * Not part of soldr: a benchmark tool, run by hand (see bench/README.md).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (16 * 1024 * 1024)
#define ID_MAX   64

struct conn {
    int fd;
    char *buf;
    size_t len, cap;
    char *out; /* unsent part of the answers */
    size_t out_len, out_cap;
    int close_after;
    int want_out; /* EPOLLOUT is registered */
};

struct rec {
    long long ns;
    char id[ID_MAX];
};

static struct rec *recs;
static size_t nrecs, recs_cap;
static unsigned long long n_requests, n_with_id, n_accepted, n_bad;
static long long open_conns, max_open_conns;

static const char OK[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
static const char NOTIMPL[] = "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
static const char BAD[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void note(const char *id, size_t idlen, long long ns)
{
    if (nrecs == recs_cap) {
        size_t cap = recs_cap ? recs_cap * 2 : 65536;
        struct rec *r = realloc(recs, cap * sizeof *r);
        if (!r)
            die("realloc");
        recs = r;
        recs_cap = cap;
    }
    if (idlen >= ID_MAX)
        idlen = ID_MAX - 1;
    recs[nrecs].ns = ns;
    memcpy(recs[nrecs].id, id, idlen);
    recs[nrecs].id[idlen] = '\0';
    nrecs++;
}

static void queue_out(struct conn *c, const char *s, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o)
            die("realloc");
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

/* Finds header `name` (lower case, with the colon) in the head [h, end);
 * returns its value, trimmed, and its length in *vl, or NULL. */
static const char *header(const char *h, const char *end, const char *name, size_t *vl)
{
    size_t nl = strlen(name);
    const char *line = memchr(h, '\n', (size_t)(end - h)); /* skip the request line */
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vl = (size_t)(ve - v);
            return v;
        }
        line = eol < end ? eol : NULL;
    }
    return NULL;
}

/* Consumes the complete requests in c->buf; returns -1 to close at once. */
static int handle(struct conn *c, long long ns)
{
    size_t off = 0;
    for (;;) {
        char *b = c->buf + off;
        size_t avail = c->len - off;
        char *eoh = avail >= 4 ? memmem(b, avail, "\r\n\r\n", 4) : NULL;
        if (!eoh) {
            if (avail > MAX_HEAD) {
                n_bad++;
                queue_out(c, BAD, sizeof BAD - 1);
                c->close_after = 1;
                c->len = 0;
                return 0;
            }
            break;
        }
        size_t head = (size_t)(eoh - b) + 4, vl;
        const char *v;
        if ((v = header(b, eoh + 2, "transfer-encoding:", &vl)) != NULL) {
            n_bad++;
            queue_out(c, NOTIMPL, sizeof NOTIMPL - 1);
            c->close_after = 1;
            c->len = 0;
            return 0;
        }
        size_t body = 0;
        if ((v = header(b, eoh + 2, "content-length:", &vl)) != NULL) {
            char tmp[32];
            char *e;
            snprintf(tmp, sizeof tmp, "%.*s", (int)(vl < 31 ? vl : 31), v);
            unsigned long long n = strtoull(tmp, &e, 10);
            if (e == tmp || *e || n > MAX_BODY) {
                n_bad++;
                queue_out(c, BAD, sizeof BAD - 1);
                c->close_after = 1;
                c->len = 0;
                return 0;
            }
            body = (size_t)n;
        }
        if (avail < head + body)
            break; /* the body is still coming */
        n_requests++;
        if ((v = header(b, eoh + 2, "webhook-id:", &vl)) != NULL) {
            n_with_id++;
            note(v, vl, ns);
        }
        if ((v = header(b, eoh + 2, "connection:", &vl)) != NULL && vl == 5 &&
            strncasecmp(v, "close", 5) == 0)
            c->close_after = 1;
        queue_out(c, OK, sizeof OK - 1);
        off += head + body;
        if (c->close_after)
            break;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    return 0;
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buf);
    free(c->out);
    free(c);
    open_conns--;
}

/* Sends what is queued; returns -1 when the connection is to be closed. */
static int flush_out(int ep, struct conn *c)
{
    size_t sent = 0;
    while (sent < c->out_len) {
        ssize_t n = write(c->fd, c->out + sent, c->out_len - sent);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return -1;
        }
        sent += (size_t)n;
    }
    memmove(c->out, c->out + sent, c->out_len - sent);
    c->out_len -= sent;
    if (!!c->out_len != c->want_out) { /* only when it changes: one syscall less per answer */
        c->want_out = !!c->out_len;
        struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (!c->out_len && c->close_after)
        return -1;
    return 0;
}

static void dump(const char *log_path, const char *stats_path)
{
    if (log_path) {
        FILE *f = fopen(log_path, "w");
        if (!f)
            die(log_path);
        for (size_t i = 0; i < nrecs; i++)
            fprintf(f, "%lld %s\n", recs[i].ns, recs[i].id);
        if (fclose(f))
            die(log_path);
    }
    if (stats_path) {
        FILE *f = fopen(stats_path, "w");
        if (!f)
            die(stats_path);
        fprintf(f, "requests=%llu\nwith_webhook_id=%llu\nconnections=%llu\nmax_open=%lld\nbad=%llu\n",
                n_requests, n_with_id, n_accepted, max_open_conns, n_bad);
        if (fclose(f))
            die(stats_path);
    }
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *log_path = NULL, *stats_path = NULL;
    int port = 0, opt;
    while ((opt = getopt(argc, argv, "a:p:o:s:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'o': log_path = optarg; break;
        case 's': stats_path = optarg; break;
        default:
            fprintf(stderr, "usage: sink -p PORT [-a ADDR] [-o LOG] [-s STATS]\n");
            return 2;
        }
    }
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "sink: -p PORT is required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        die("signalfd");

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "sink: bad address %s\n", addr);
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    if (listen(lfd, 4096) < 0)
        die("listen");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &sfd) {
                dump(log_path, stats_path);
                return 0;
            }
            if (evs[i].data.ptr == &lfd) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    if (!c)
                        die("calloc");
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                    n_accepted++;
                    if (++open_conns > max_open_conns)
                        max_open_conns = open_conns;
                }
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT) {
                if (flush_out(ep, c) < 0) {
                    conn_close(ep, c);
                    continue;
                }
                if (!(evs[i].events & EPOLLIN))
                    continue;
            }
            int closed = 0, got = 0;
            long long ns = 0;
            for (;;) {
                if (c->cap - c->len < 16384) {
                    size_t cap = c->cap ? c->cap * 2 : 32768;
                    char *b = realloc(c->buf, cap);
                    if (!b)
                        die("realloc");
                    c->buf = b;
                    c->cap = cap;
                }
                ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (r > 0) {
                    ns = now_ns();
                    c->len += (size_t)r;
                    got = 1;
                    if (c->len < c->cap)
                        break; /* drained what the kernel had */
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    closed = 1;
                if (r < 0 && errno == EINTR)
                    continue;
                break;
            }
            if (got && !c->close_after)
                handle(c, ns);
            if (c->out_len && flush_out(ep, c) < 0)
                closed = 1;
            if (closed || (c->close_after && !c->out_len))
                conn_close(ep, c);
        }
    }
}
