/* Unit tests for the store's writer thread on a real libuv loop: group
 * commit, stop, the queue limit, and the stdout fallback (the lock is held
 * from a second SQLite connection, so this file includes sqlite3.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "common/errors.h"
#include "common/id.h"
#include "common/log.h"
#include "common/request.h"
#include "store/store.h"

#include "store_fixture.h"
/* ---- the writer thread ------------------------------------------------------ */

struct slot {
    struct wctx *c;
    int idx;
    int calls;
    int outcome;
};

struct wctx {
    struct store *st;
    struct slot *slots;
    int total;     /* callbacks expected before stopping (0: do not stop) */
    int callbacks; /* all callbacks so far */
    int stop_done;
};

static void on_stopped(void *arg)
{
    struct wctx *c = arg;
    c->stop_done++;
}

static void on_insert(void *arg, int outcome)
{
    struct slot *s = arg;
    s->calls++;
    s->outcome = outcome;
    s->c->callbacks++;
    if (s->c->total && s->c->callbacks == s->c->total)
        store_stop(s->c->st, on_stopped, s->c);
}

/* Runs the loop until *flag reaches n, failing (instead of hanging) after 20 s. */
static void run_loop_until(uv_loop_t *loop, const int *flag, int n, const char *what)
{
    long long deadline = time_now_ms() + 20000;
    while (*flag < n) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (*flag >= n)
            break;
        if (time_now_ms() > deadline)
            fail_msg("timed out waiting for %s (%d of %d)", what, *flag, n);
        usleep(200);
    }
}

/* Until n insert callbacks ran. */
static void run_until(uv_loop_t *loop, struct wctx *c, int n)
{
    run_loop_until(loop, &c->callbacks, n, "insert callbacks");
}

/* Until store_stop's done callback ran (the store's handle is then closed). */
static void run_until_stopped(uv_loop_t *loop, struct wctx *c)
{
    run_loop_until(loop, &c->stop_done, 1, "store_stop's done callback");
}

/* Closes the loop; a handle left open (leaked) fails the test. */
static void close_loop(uv_loop_t *loop)
{
    int rc = uv_loop_close(loop);
    if (rc != 0) {
        uv_print_all_handles(loop, stderr);
        fail_msg("uv_loop_close = %d (%s): a handle was leaked", rc, uv_strerror(rc));
    }
}

#define NWRITES 500

static void writer_commits_500(void **state)
{
    struct fx *f = *state;
    struct soldr_request *reqs = calloc(NWRITES, sizeof *reqs);
    struct slot *slots = calloc(NWRITES, sizeof *slots);
    assert_non_null(reqs);
    assert_non_null(slots);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct wctx c = {.slots = slots, .total = NWRITES};
    c.st = open_store(f);
    assert_int_equal(store_start(c.st, &loop), 0);
    for (int i = 0; i < NWRITES; i++) {
        make_request(f, &reqs[i], i);
        slots[i] = (struct slot){.c = &c, .idx = i, .outcome = 12345};
        int rc = store_insert_request(c.st, &reqs[i], on_insert, &slots[i]);
        if (rc != 0)
            fail_msg("store_insert_request #%d = %d (%s)", i, rc, soldr_strerror(rc));
    }
    /* The last callback calls store_stop; the loop ends when the store is closed. */
    run_until_stopped(&loop, &c);
    assert_int_equal(c.callbacks, NWRITES);
    assert_int_equal(c.stop_done, 1);
    for (int i = 0; i < NWRITES; i++) {
        if (slots[i].calls != 1 || slots[i].outcome != STORE_COMMITTED)
            fail_msg("request %d: %d callbacks, outcome %d; want 1, STORE_COMMITTED", i,
                     slots[i].calls, slots[i].outcome);
    }
    close_loop(&loop);
    /* Committed means nothing went to the fallback. */
    size_t n;
    char *fb = drain_fallback(f, &n);
    assert_int_equal(n, 0);
    free(fb);
    store_close(c.st);

    /* Durable: a new connection reads every row back, byte for byte. */
    struct store *st = open_store(f);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM requests"), NWRITES);
    for (int i = 0; i < NWRITES; i++) {
        assert_stored(st, &reqs[i]);
        req_free(&reqs[i]);
    }
    store_close(st);
    free(reqs);
    free(slots);
}

static void writer_stop_drains_queue(void **state)
{
    struct fx *f = *state;
    enum { N = 200 };
    struct soldr_request reqs[N];
    struct slot slots[N];
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct wctx c = {.slots = slots, .total = 0};
    c.st = open_store(f);
    assert_int_equal(store_start(c.st, &loop), 0);
    for (int i = 0; i < N; i++) {
        make_request(f, &reqs[i], i);
        slots[i] = (struct slot){.c = &c, .idx = i, .outcome = 12345};
        assert_int_equal(store_insert_request(c.st, &reqs[i], on_insert, &slots[i]), 0);
    }
    /* Stop at once: what is queued is still committed and called back. */
    store_stop(c.st, on_stopped, &c);
    struct soldr_request late;
    make_request(f, &late, N);
    struct slot late_slot = {.c = &c, .idx = -1};
    assert_int_equal(store_insert_request(c.st, &late, on_insert, &late_slot), SOLDR_ESTOPPED);
    run_until_stopped(&loop, &c);
    assert_int_equal(c.stop_done, 1);
    assert_int_equal(c.callbacks, N);
    assert_int_equal(late_slot.calls, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(slots[i].calls, 1);
        assert_int_equal(slots[i].outcome, STORE_COMMITTED);
    }
    close_loop(&loop);
    /* After store_stop the connection serves the synchronous functions again. */
    for (int i = 0; i < N; i++) {
        assert_stored(c.st, &reqs[i]);
        req_free(&reqs[i]);
    }
    assert_not_stored(c.st, late.id);
    req_free(&late);
    store_close(c.st);
}

static void writer_queue_limit(void **state)
{
    struct fx *f = *state;
    f->opts.max_queue_bytes = 4096;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    enum { N = 20 };
    struct soldr_request reqs[N];
    struct slot slots[N];
    struct wctx c = {.slots = slots};
    c.st = open_store(f);
    assert_int_equal(store_start(c.st, &loop), 0);
    int accepted = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        make_request(f, &reqs[i], 599); /* 600-byte body: each counts > 1 KiB */
        slots[i] = (struct slot){.c = &c, .idx = i, .outcome = 12345};
        int rc = store_insert_request(c.st, &reqs[i], on_insert, &slots[i]);
        if (rc == 0)
            accepted++;
        else if (rc == SOLDR_EBUSY)
            busy++;
        else
            fail_msg("store_insert_request = %d", rc);
    }
    /* Nothing was handed back to the loop yet, so the queue is full. */
    assert_true(accepted >= 1 && accepted <= 4);
    assert_int_equal(busy, N - accepted);
    run_until(&loop, &c, accepted);
    /* Once the results came back, there is room again. */
    struct soldr_request more;
    make_request(f, &more, 3);
    struct slot more_slot = {.c = &c, .idx = N};
    assert_int_equal(store_insert_request(c.st, &more, on_insert, &more_slot), 0);
    c.total = accepted + 1;
    run_until_stopped(&loop, &c);
    assert_int_equal(c.stop_done, 1);
    assert_int_equal(more_slot.calls, 1);
    assert_int_equal(more_slot.outcome, STORE_COMMITTED);
    for (int i = 0; i < N; i++) {
        assert_int_equal(slots[i].calls, i < accepted ? 1 : 0);
        if (i < accepted)
            assert_int_equal(slots[i].outcome, STORE_COMMITTED);
    }
    close_loop(&loop);
    for (int i = 0; i < N; i++) {
        if (i < accepted)
            assert_stored(c.st, &reqs[i]);
        else
            assert_not_stored(c.st, reqs[i].id);
        req_free(&reqs[i]);
    }
    assert_stored(c.st, &more);
    req_free(&more);
    store_close(c.st);
}

/* ---- the fallback ----------------------------------------------------------- */

/* A second connection holding the write lock: every store commit times out. */
static sqlite3 *lock_database(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sql_exec(db, "BEGIN EXCLUSIVE"); /* in WAL mode: takes the write lock at once */
    return db;
}

#define NFALL 10

static void fallback_logs_when_commit_fails(void **state)
{
    struct fx *f = *state;
    f->opts.busy_timeout_ms = 50;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct soldr_request reqs[NFALL + 1];
    struct slot slots[NFALL + 1];
    struct wctx c = {.slots = slots};
    c.st = open_store(f);
    sqlite3 *lock = lock_database(f->path);
    assert_int_equal(store_start(c.st, &loop), 0);
    for (int i = 0; i < NFALL; i++) {
        make_request(f, &reqs[i], i); /* i = 0, 5: invalid UTF-8 target; 1, 5, 9: X-Bin */
        slots[i] = (struct slot){.c = &c, .idx = i, .outcome = 12345};
        assert_int_equal(store_insert_request(c.st, &reqs[i], on_insert, &slots[i]), 0);
    }
    run_until(&loop, &c, NFALL);
    for (int i = 0; i < NFALL; i++) {
        if (slots[i].calls != 1 || slots[i].outcome != STORE_LOGGED)
            fail_msg("request %d: %d callbacks, outcome %d; want 1, STORE_LOGGED", i,
                     slots[i].calls, slots[i].outcome);
    }
    /* The pipe holds exactly one JSON line per request, each the same request. */
    size_t len;
    char *text = drain_fallback(f, &len);
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    int lines = 0;
    int seen[NFALL] = {0};
    for (char *p = text, *nl; p < text + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(text + len - p));
        assert_non_null(nl);
        struct soldr_request got;
        req_init(&got, MAX_REQ);
        int rc = req_from_json(&got, p, (size_t)(nl - p));
        if (rc != 0)
            fail_msg("fallback line %d does not parse (%d): %.*s", lines, rc, (int)(nl - p), p);
        int match = -1;
        for (int i = 0; i < NFALL; i++)
            if (strcmp(got.id, reqs[i].id) == 0)
                match = i;
        if (match < 0)
            fail_msg("fallback line %d has an unknown id %s", lines, got.id);
        assert_req_equal(&reqs[match], &got);
        seen[match]++;
        req_free(&got);
        lines++;
    }
    assert_int_equal(lines, NFALL);
    for (int i = 0; i < NFALL; i++)
        assert_int_equal(seen[i], 1);
    free(text);

    /* Recovery: the lock goes away and the next insert commits. */
    sql_exec(lock, "ROLLBACK");
    make_request(f, &reqs[NFALL], NFALL);
    slots[NFALL] = (struct slot){.c = &c, .idx = NFALL, .outcome = 12345};
    c.total = NFALL + 1;
    assert_int_equal(store_insert_request(c.st, &reqs[NFALL], on_insert, &slots[NFALL]), 0);
    run_until_stopped(&loop, &c);
    assert_int_equal(c.stop_done, 1);
    assert_int_equal(slots[NFALL].calls, 1);
    assert_int_equal(slots[NFALL].outcome, STORE_COMMITTED);
    close_loop(&loop);
    text = drain_fallback(f, &len);
    assert_int_equal(len, 0); /* the committed one was not logged */
    free(text);
    sqlite3_close(lock);

    /* Logged requests were rolled back, not half committed. */
    for (int i = 0; i < NFALL; i++) {
        assert_not_stored(c.st, reqs[i].id);
        req_free(&reqs[i]);
    }
    assert_stored(c.st, &reqs[NFALL]);
    req_free(&reqs[NFALL]);
    store_close(c.st);
}

/* The commit fails and so does the fallback write: the outcome says so. */
static void fallback_failure_reports_error(int fallback_fd, struct fx *f)
{
    f->opts.busy_timeout_ms = 50;
    f->opts.fallback_fd = fallback_fd;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    enum { N = 5 };
    struct soldr_request reqs[N + 1];
    struct slot slots[N + 1];
    struct wctx c = {.slots = slots};
    c.st = open_store(f);
    sqlite3 *lock = lock_database(f->path);
    assert_int_equal(store_start(c.st, &loop), 0);
    for (int i = 0; i < N; i++) {
        make_request(f, &reqs[i], i);
        slots[i] = (struct slot){.c = &c, .idx = i, .outcome = 12345};
        assert_int_equal(store_insert_request(c.st, &reqs[i], on_insert, &slots[i]), 0);
    }
    run_until(&loop, &c, N);
    for (int i = 0; i < N; i++) {
        if (slots[i].calls != 1 || slots[i].outcome >= 0)
            fail_msg("request %d: %d callbacks, outcome %d; want 1, < 0", i, slots[i].calls,
                     slots[i].outcome);
        assert_int_equal(slots[i].outcome, SOLDR_EFALLBACK);
    }
    /* Recovery. */
    sql_exec(lock, "ROLLBACK");
    sqlite3_close(lock);
    make_request(f, &reqs[N], N);
    slots[N] = (struct slot){.c = &c, .idx = N, .outcome = 12345};
    c.total = N + 1;
    assert_int_equal(store_insert_request(c.st, &reqs[N], on_insert, &slots[N]), 0);
    run_until_stopped(&loop, &c);
    assert_int_equal(c.stop_done, 1);
    assert_int_equal(slots[N].outcome, STORE_COMMITTED);
    close_loop(&loop);
    for (int i = 0; i < N; i++) {
        assert_not_stored(c.st, reqs[i].id);
        req_free(&reqs[i]);
    }
    assert_stored(c.st, &reqs[N]);
    req_free(&reqs[N]);
    store_close(c.st);
}

static void fallback_to_full_device_fails(void **state)
{
    struct fx *f = *state;
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        skip();
    fallback_failure_reports_error(fd, f);
    close(fd);
}

static void fallback_to_bad_fd_fails(void **state)
{
    struct fx *f = *state;
    /* A descriptor that is not open: -1 can never be (a closed number could be reused). */
    fallback_failure_reports_error(-1, f);
}

static void fallback_to_closed_pipe_fails(void **state)
{
    struct fx *f = *state;
    /* stdout's reader went away (EPIPE; SIGPIPE ignored as a daemon would). */
    signal(SIGPIPE, SIG_IGN);
    close(f->fallback[0]);
    f->fallback[0] = open("/dev/null", O_RDONLY | O_CLOEXEC); /* keeps teardown simple */
    fallback_failure_reports_error(f->fallback[1], f);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the failure tests log errors on purpose; keep the rest quiet */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(writer_commits_500, setup, teardown),
        cmocka_unit_test_setup_teardown(writer_stop_drains_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(writer_queue_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(fallback_logs_when_commit_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(fallback_to_full_device_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(fallback_to_bad_fd_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(fallback_to_closed_pipe_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
