/* Shared fuzz harness pieces: see fuzz_common.h. */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"

#define ANSWERS_MAX (16u << 20)

int fuzz_verbose(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("SOLDR_FUZZ_VERBOSE") != NULL;
    return v;
}

void fuzz_process_init(void)
{
    log_set_level(LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- environment ------------------------------------------------------------- */

static struct fuzz_dir *live[4]; /* made and not removed yet */

void fuzz_dir_make(struct fuzz_dir *d, const char *tag)
{
    const char *base = getenv("SOLDR_FUZZ_TMP");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(d->path, sizeof d->path, "%s/soldr-%s-XXXXXX", base, tag);
    FUZZ_CHECK(mkdtemp(d->path), "mkdtemp(%s): %s", d->path, strerror(errno));
    snprintf(d->db, sizeof d->db, "%s/soldr.db", d->path);
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (!live[i]) {
            live[i] = d;
            break;
        }
}

void fuzz_dir_remove(struct fuzz_dir *d)
{
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] == d)
            live[i] = NULL;
    DIR *dir = opendir(d->path);
    struct dirent *e;
    char p[600];
    while (dir && (e = readdir(dir)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof p, "%s/%s", d->path, e->d_name);
            unlink(p);
        }
    if (dir)
        closedir(dir);
    rmdir(d->path);
}

void fuzz_dirs_remove_all(void)
{
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i])
            fuzz_dir_remove(live[i]);
}

struct store *fuzz_store_open(const struct fuzz_dir *d)
{
    static int devnull = -1;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct store_opts o = {
        .path = d->db,
        .durability = SOLDR_DURABILITY_NORMAL,
        .busy_timeout_ms = 5000,
        .max_queue_bytes = 256u << 20,
        .fallback_fd = devnull,
    };
    struct store *st = NULL;
    int rc = store_open(&st, &o);
    FUZZ_CHECK(rc == 0 && st, "store_open(%s) = %d (%s)", d->db, rc, soldr_strerror(rc));
    return st;
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

int fuzz_loop_handles(uv_loop_t *loop)
{
    int n = 0;
    uv_walk(loop, count_handle, &n);
    return n;
}

static void describe_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "  open handle: %s%s\n", uv_handle_type_name(uv_handle_get_type(h)),
            uv_is_closing(h) ? " (closing)" : "");
}

void fuzz_loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(loop);
    if (rc != 0) {
        uv_walk(loop, describe_handle, NULL);
        FUZZ_FAIL("uv_loop_close() = %d (%s): a handle was leaked", rc, uv_strerror(rc));
    }
}

/* ---- a loopback client ------------------------------------------------------- */

struct client {
    uv_tcp_t tcp;
    uv_timer_t watchdog;
    uv_connect_t connect;
    uv_write_t write;
    uv_shutdown_t shutdown;
    char rbuf[64 * 1024];
    const uint8_t *data;
    size_t len;
    struct fuzz_exchange *x;
    int closed; /* handles closed (2 when both are) */
    int eof;    /* the server closed or reset */
    int connected;
    uint64_t timeout_ms;
};

static void on_client_closed(uv_handle_t *h)
{
    struct client *cl = h->data;
    cl->closed++;
}

static void client_end(struct client *cl)
{
    cl->eof = 1;
    if (!uv_is_closing((uv_handle_t *)&cl->tcp))
        uv_close((uv_handle_t *)&cl->tcp, on_client_closed);
}

static void on_watchdog(uv_timer_t *t)
{
    struct client *cl = t->data;
    FUZZ_FAIL("the exchange did not end within %llu ms: the server kept the connection (or a "
              "handle of it) open after the client's half-close (%zu answer bytes so far, "
              "input %zu bytes, client %s)",
              (unsigned long long)cl->timeout_ms, cl->x->answers.len, cl->len,
              cl->eof ? "saw the close" : "still reading");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct client *cl = h->data;
    *b = uv_buf_init(cl->rbuf, sizeof cl->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct client *cl = s->data;
    if (n > 0) {
        FUZZ_CHECK(buf_append(&cl->x->answers, b->base, (size_t)n) == 0,
                   "the server sent more than %u bytes for one input", ANSWERS_MAX);
    } else if (n < 0) {
        if (n != UV_EOF)
            cl->x->reset = 1;
        client_end(cl);
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct client *cl = w->data;
    if (status < 0)
        cl->x->reset = 1; /* the server closed before taking all our bytes */
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    (void)s, (void)status;
}

static void on_connect(uv_connect_t *c, int status)
{
    struct client *cl = c->data;
    FUZZ_CHECK(status == 0, "connect to the server under test: %s", uv_strerror(status));
    cl->connected = 1;
    FUZZ_CHECK(uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) == 0, "uv_read_start");
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* Sends the input in pieces of pseudo-random sizes (from seed), letting the
 * server read after each one, so that the parser's callbacks get a method,
 * target, header name or value, chunk or body in several parts. */
static void write_pieces(uv_loop_t *loop, struct client *cl, uint64_t seed)
{
    size_t off = 0, most = cl->len / 8 > 32 ? cl->len / 8 : 32;
    while (off < cl->len && !cl->eof) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = 1 + (size_t)((seed >> 33) % most);
        if (n > cl->len - off)
            n = cl->len - off;
        uv_buf_t b = uv_buf_init((char *)cl->data + off, (unsigned)n);
        int rc = uv_try_write((uv_stream_t *)&cl->tcp, &b, 1);
        if (rc == UV_EAGAIN) {
            uv_run(loop, UV_RUN_ONCE);
            continue;
        }
        if (rc < 0) {
            cl->x->reset = 1; /* the server closed before taking all our bytes */
            return;
        }
        off += (size_t)rc;
        uv_run(loop, UV_RUN_NOWAIT);
        uv_run(loop, UV_RUN_NOWAIT);
    }
}

void fuzz_exchange(uv_loop_t *loop, int port, const uint8_t *data, size_t len, int baseline,
                   uint64_t timeout_ms, enum fuzz_split split, struct fuzz_exchange *x)
{
    static struct client cl; /* big read buffer: not on the stack */
    memset(&cl, 0, sizeof cl);
    memset(x, 0, sizeof *x);
    buf_init(&x->answers, ANSWERS_MAX);
    cl.data = data;
    cl.len = len;
    cl.x = x;
    cl.timeout_ms = timeout_ms;
    uint64_t t0 = uv_hrtime();
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    uv_tcp_init(loop, &cl.tcp);
    uv_timer_init(loop, &cl.watchdog);
    cl.tcp.data = cl.watchdog.data = cl.connect.data = cl.write.data = cl.shutdown.data = &cl;
    uv_timer_start(&cl.watchdog, on_watchdog, timeout_ms, 0);
    FUZZ_CHECK(uv_tcp_connect(&cl.connect, &cl.tcp, (const struct sockaddr *)&sa, on_connect) == 0,
               "uv_tcp_connect");
    while (!cl.connected)
        uv_run(loop, UV_RUN_ONCE);
    /* Piece sizes and FUZZ_SPLIT_HASH's choice come from a hash of the
     * bytes, so a crash reproduces. */
    uint64_t h = fnv1a(data, len);
    int pieces = split == FUZZ_SPLIT_PIECES || (split == FUZZ_SPLIT_HASH && (h & 1));
    if (pieces && len > 1) {
        write_pieces(loop, &cl, h);
    } else if (len) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        FUZZ_CHECK(uv_write(&cl.write, (uv_stream_t *)&cl.tcp, &b, 1, on_written) == 0, "uv_write");
    }
    if (!cl.eof)
        FUZZ_CHECK(uv_shutdown(&cl.shutdown, (uv_stream_t *)&cl.tcp, on_shutdown) == 0,
                   "uv_shutdown");
    while (!cl.eof)
        uv_run(loop, UV_RUN_ONCE);
    /* The server has closed its end: everything it opened for the connection
     * must go away now, leaving the baseline plus the watchdog. */
    while (cl.closed < 1 || fuzz_loop_handles(loop) > baseline + 1)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&cl.watchdog, on_client_closed);
    while (cl.closed < 2)
        uv_run(loop, UV_RUN_ONCE);
    FUZZ_CHECK(fuzz_loop_handles(loop) == baseline, "the loop holds %d handles, %d before",
               fuzz_loop_handles(loop), baseline);
    x->ms = (double)(uv_hrtime() - t0) / 1e6;
}

void fuzz_exchange_free(struct fuzz_exchange *x)
{
    buf_free(&x->answers);
}

/* ---- the answer stream -------------------------------------------------------- */

static const char *find(const char *p, const char *end, const char *needle)
{
    return memmem(p, (size_t)(end - p), needle, strlen(needle));
}

const char *fuzz_answer_header(const struct fuzz_answer *a, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *end = a->head + a->head_len;
    const char *p = find(a->head, end, "\r\n") + 2; /* after the status line */
    while (p < end) {
        const char *eol = find(p, end, "\r\n");
        if (!eol || eol == p)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            *len = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Parses the answer at p; 0 and *a set, or a reason (or NULL for "cut"). */
static int parse_answer(const char *p, const char *end, struct fuzz_answer *a, const char **why)
{
    memset(a, 0, sizeof *a);
    *why = NULL;
    const char *hend = find(p, end, "\r\n\r\n");
    if (!hend)
        return -1; /* cut (why stays NULL) unless the start is already wrong */
    a->head = p;
    a->head_len = (size_t)(hend + 4 - p);
    if (a->head_len < 14 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[9] < '1' || p[9] > '5' ||
        p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' || p[12] != ' ') {
        *why = "bad status line";
        return -1;
    }
    a->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    size_t cl_len = 0;
    const char *cl = fuzz_answer_header(a, "content-length", &cl_len);
    size_t conn_len = 0;
    const char *conn = fuzz_answer_header(a, "connection", &conn_len);
    a->close = conn && conn_len == 5 && strncasecmp(conn, "close", 5) == 0;
    a->body = hend + 4;
    if (a->status < 200) {
        if (cl)
            *why = "an interim answer with a Content-Length";
        return *why ? -1 : 0;
    }
    if (!cl || cl_len == 0 || cl_len > 10 || strspn(cl, "0123456789") < cl_len) {
        *why = "a final answer without a valid Content-Length";
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < cl_len; i++)
        n = n * 10 + (size_t)(cl[i] - '0');
    /* Exactly one Content-Length. */
    const char *again = find(cl + cl_len, hend + 2, "\r\nContent-Length:");
    if (again) {
        *why = "two Content-Length headers";
        return -1;
    }
    if ((size_t)(end - a->body) < n)
        return -1; /* cut */
    a->body_len = n;
    return 0;
}

size_t fuzz_answers(const struct buf *answers, int cut_ok,
                    void (*each)(void *arg, const struct fuzz_answer *a), void *arg)
{
    const char *p = answers->data ? answers->data : "", *end = p + answers->len;
    size_t finals = 0;
    int closed = 0;
    while (p < end) {
        struct fuzz_answer a;
        const char *why;
        FUZZ_CHECK(!closed, "bytes after a \"Connection: close\" answer: %.*s",
                   (int)(end - p > 200 ? 200 : end - p), p);
        if (parse_answer(p, end, &a, &why) != 0) {
            if (why)
                FUZZ_FAIL("malformed answer (%s): %.*s", why, (int)(end - p > 300 ? 300 : end - p),
                          p);
            FUZZ_CHECK(cut_ok, "a cut answer without a reset: %.*s",
                       (int)(end - p > 300 ? 300 : end - p), p);
            break;
        }
        p = a.body + a.body_len;
        if (fuzz_verbose())
            fprintf(stderr, "answer: %.*s\n",
                    (int)(memchr(a.head, '\r', a.head_len)
                              ? (const char *)memchr(a.head, '\r', a.head_len) - a.head
                              : 0),
                    a.head);
        if (a.status < 200)
            continue;
        finals++;
        closed = a.close;
        if (fuzz_verbose())
            fprintf(stderr, "answer: %.*s\n", (int)(a.body_len > 160 ? 160 : a.body_len), a.body);
        if (each)
            each(arg, &a);
    }
    return finals;
}
