/* fuzz_ingest_http: raw bytes through the real ingest path.
 *
 * Once per process: a store on a temporary SQLite file (writer thread
 * running), and the real ingest (httpd + llhttp + routing + ids + the store's
 * group commit) listening on a loopback socket, all on one libuv loop in this
 * thread. Per input: a new loopback connection carries the bytes, is
 * half-closed, and the loop runs until the server has answered and closed
 * and every handle it opened is gone. Checks:
 *  1. the answer stream is well-framed HTTP/1.1 (fuzz_answers);
 *  2. every final answer is one ingest or httpd gives to a client's input
 *     (200, 400, 404, 413, 414, 431): a 5xx means a healthy store refused a
 *     request, a 408 that the server waited on a client that had finished;
 *  3. every answer is a JSON object; a 200 is {"id": <UUIDv7>} and that
 *     request is in the database when the client gets the answer (the ack
 *     rule);
 *  4. each input is sent twice, in one write and in small pieces the server
 *     reads one by one: the answers and the stored requests must be the
 *     same (unless a send was reset; 400, 413, 414 and 431 count as one
 *     "rejected"), or the parser frames a request differently depending on
 *     how it arrives;
 *  5. the server closes within EXCHANGE_MS of the client's half-close and
 *     leaves no handle behind (fuzz_exchange);
 *  6. every RESET_EVERY inputs the whole thing is stopped and started again
 *     on a fresh database: ingest_stop/store_stop must leave a loop that
 *     uv_loop_close() accepts.
 * Limits are small (2 KiB body and header section) so that inputs of a few
 * KiB reach 413, 414 and 431. */
#include <cjson/cJSON.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "common/config.h"
#include "common/id.h"
#include "fuzz_common.h"
#include "ingest/ingest.h"
#include "store/requests_api.h"

#define RESET_EVERY 2048
#define EXCHANGE_MS 2000
#define MAX_IDS     64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    int up;
    uv_loop_t loop;
    struct fuzz_dir dir;
    struct soldr_config cfg;
    struct store *st;
    struct ingest *in;
    int port;
    int baseline;
    unsigned inputs;
    int stopped;
} E;

/* A listening loopback socket on a free port, passed to ingest as systemd would. */
static int listen_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0, "socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    FUZZ_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 128) == 0 &&
                   getsockname(fd, (struct sockaddr *)&sa, &sl) == 0,
               "bind/listen on loopback");
    *port = ntohs(sa.sin_port);
    return fd;
}

static void env_up(void)
{
    if (!E.cfg.domain[0]) {
        char arg0[] = "fuzz", *argv[] = {arg0, NULL};
        int argc = 1;
        FUZZ_CHECK(config_load(&E.cfg, CFG_SERVE, &argc, argv, stderr) == 0, "config_load");
        snprintf(E.cfg.domain, sizeof E.cfg.domain, "wh.example.com");
        E.cfg.max_body = 2048;
        E.cfg.max_header_size = 2048;
        E.cfg.read_timeout_ms = 5000;
        E.cfg.idle_timeout_ms = 5000;
        E.cfg.max_connections = 64;
    }
    fuzz_dir_make(&E.dir, "fuzz-ingest");
    E.st = fuzz_store_open(&E.dir);
    FUZZ_CHECK(uv_loop_init(&E.loop) == 0, "uv_loop_init");
    FUZZ_CHECK(store_start(E.st, &E.loop) == 0, "store_start");
    int fd = listen_socket(&E.port);
    FUZZ_CHECK(ingest_start(&E.in, &E.loop, &E.cfg, E.st, fd) == 0, "ingest_start");
    E.baseline = fuzz_loop_handles(&E.loop);
    E.up = 1;
}

static void on_store_stopped(void *arg)
{
    (void)arg;
    E.stopped = 1;
}

static void on_ingest_stopped(void *arg)
{
    (void)arg;
    store_stop(E.st, on_store_stopped, NULL);
}

static void env_down(void)
{
    if (!E.up)
        return;
    E.stopped = 0;
    ingest_stop(E.in, on_ingest_stopped, NULL);
    fuzz_loop_finish(&E.loop);
    FUZZ_CHECK(E.stopped, "store_stop never called its callback");
    store_close(E.st);
    fuzz_dir_remove(&E.dir);
    E.up = 0;
}

struct seen {
    int status[MAX_IDS];
    size_t n; /* final answers (the first MAX_IDS are kept) */
    char ids[MAX_IDS][SOLDR_ID_LEN + 1];
    size_t nids;
};

static void check_answer(void *arg, const struct fuzz_answer *a)
{
    struct seen *s = arg;
    static const int allowed[] = {200, 400, 404, 413, 414, 431};
    int ok = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        ok |= a->status == allowed[i];
    FUZZ_CHECK(ok, "unexpected status %d: %.*s%.*s", a->status, (int)a->head_len, a->head,
               (int)a->body_len, a->body);
    /* Which of 400, 413, 414 or 431 rejects a request may depend on where
     * the pieces end (a limit crossed before a bad byte is seen): they compare
     * as one "rejected". */
    if (s->n < MAX_IDS)
        s->status[s->n] = a->status == 200 || a->status == 404 ? a->status : 4;
    s->n++;
    cJSON *doc = cJSON_ParseWithLength(a->body, a->body_len);
    FUZZ_CHECK(cJSON_IsObject(doc), "the body of a %d is not a JSON object: %.*s", a->status,
               (int)a->body_len, a->body);
    if (a->status == 200) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
        FUZZ_CHECK(cJSON_IsString(id) && id_valid(id->valuestring, strlen(id->valuestring)),
                   "a 200 without a request id: %.*s", (int)a->body_len, a->body);
        if (s->nids < MAX_IDS)
            memcpy(s->ids[s->nids++], id->valuestring, SOLDR_ID_LEN + 1);
    } else {
        FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "error")),
                   "a %d without an error message", a->status);
    }
    cJSON_Delete(doc);
}

/* The stored request as the API shows it, without what differs between two
 * copies of one request (id, peer, times). The ack rule: what was answered
 * 200 is in the database. */
static cJSON *stored(struct store_reader *rd, const char *id)
{
    int status = 0;
    cJSON *doc = store_read_request(rd, id, &status);
    FUZZ_CHECK(doc, "request %s was answered 200 but is not in the database (status %d)", id,
               status);
    cJSON *r = cJSON_DetachItemFromObjectCaseSensitive(doc, "request");
    cJSON_Delete(doc);
    FUZZ_CHECK(cJSON_IsObject(r), "request %s: no \"request\" in the detail", id);
    cJSON *it = r->child;
    while (it) {
        cJSON *next = it->next;
        size_t kl = strlen(it->string);
        if (strcmp(it->string, "id") == 0 || strcmp(it->string, "peer") == 0 ||
            (kl > 3 && strcmp(it->string + kl - 3, "_at") == 0))
            cJSON_Delete(cJSON_DetachItemViaPointer(r, it));
        it = next;
    }
    return r;
}

/* Checks the ack rule for both sends and, when neither was reset, that
 * sending the bytes in pieces changed nothing: the same answers, and the
 * same requests stored. A difference means the parser frames a request
 * differently depending on how it arrives (a smuggling risk). */
static void compare(size_t size, const struct seen *a, const struct seen *b, int reset)
{
    struct store_reader *rd = store_reader_get(E.st);
    FUZZ_CHECK(rd, "store_reader_get");
    for (size_t i = 0; i < a->nids; i++)
        cJSON_Delete(stored(rd, a->ids[i]));
    for (size_t i = 0; i < b->nids; i++)
        cJSON_Delete(stored(rd, b->ids[i]));
    if (!reset) {
        int same = a->n == b->n;
        for (size_t i = 0; same && i < a->n && i < MAX_IDS; i++)
            same = a->status[i] == b->status[i];
        if (!same) {
            fprintf(stderr, "in one write (4: rejected):");
            for (size_t i = 0; i < a->n && i < MAX_IDS; i++)
                fprintf(stderr, " %d", a->status[i]);
            fprintf(stderr, "\nin pieces:                 ");
            for (size_t i = 0; i < b->n && i < MAX_IDS; i++)
                fprintf(stderr, " %d", b->status[i]);
            fputc('\n', stderr);
            FUZZ_FAIL("the answers depend on how the %zu input bytes were split", size);
        }
        for (size_t i = 0; i < a->nids && i < b->nids; i++) {
            cJSON *ra = stored(rd, a->ids[i]), *rb = stored(rd, b->ids[i]);
            if (!cJSON_Compare(ra, rb, 1)) {
                char *ja = cJSON_PrintUnformatted(ra), *jb = cJSON_PrintUnformatted(rb);
                FUZZ_FAIL("request %zu was stored differently in one write and in pieces:\n%s\n%s",
                          i + 1, ja, jb);
            }
            cJSON_Delete(ra);
            cJSON_Delete(rb);
        }
    }
    store_reader_put(E.st, rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!E.up) {
        static int once;
        if (!once++) {
            fuzz_process_init();
            atexit(env_down);
        }
        env_up();
    }
    static struct seen s[2];
    struct fuzz_exchange x;
    int reset = 0;
    for (int k = 0; k < 2; k++) {
        memset(&s[k], 0, sizeof s[k]);
        fuzz_exchange(&E.loop, E.port, data, size, E.baseline, EXCHANGE_MS,
                      k ? FUZZ_SPLIT_PIECES : FUZZ_SPLIT_NONE, &x);
        fuzz_answers(&x.answers, x.reset, check_answer, &s[k]);
        reset |= x.reset;
        fuzz_exchange_free(&x);
    }
    compare(size, &s[0], &s[1], reset);
    if (++E.inputs % RESET_EVERY == 0)
        env_down();
    return 0;
}
