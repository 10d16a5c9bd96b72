/* Unit tests for the retention purge (src/store/purge.c): which rows go,
 * which stay, the rollup counters, the dry run, chunking, long retentions,
 * and chunks queued on a running writer thread.
 *
 * Requests are backdated with store_replay_insert (their received_at is in
 * the past, as when `soldr replay` restores old records); attempts rows are
 * inserted with SQL from a second connection, ordered by started_at, as the
 * processor writes them. Every test passes the cutoff itself (the CLI and the
 * timer task compute now - days * 86400000). Each test has a fresh database
 * (store_fixture.c). */
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
#include "store/purge.h"
#include "store/store.h"

#include "store_fixture.h"

#define DAY 86400000LL

/* ---- a seeded database -------------------------------------------------------- */

/* States cycle over old and young requests alike: two of five are
 * undelivered (pending, sending). */
static const char *const STATES[] = {"delivered", "pending", "failed", "sending", "orphaned"};
#define NSTATES 5

struct seeded_req {
    struct soldr_request r;
    const char *state;
    int old; /* received before the cutoff: the purge must delete it */
};

struct attempt_def {
    int req;              /* index into seed.reqs */
    long long started_at; /* unix ms */
};

struct seed {
    long long now, cutoff;
    int n;                    /* requests */
    struct seeded_req *reqs;  /* in seq order */
    int na;                   /* attempts */
    struct attempt_def *atts; /* in id order (= started_at order) */
    /* what a purge at `cutoff` must report */
    long long want_requests, want_undelivered, want_attempts;
    long long want_left_attempts; /* attempts rows left afterwards */
};

static int cmp_attempt(const void *a, const void *b)
{
    const struct attempt_def *x = a, *y = b;
    if (x->started_at != y->started_at)
        return x->started_at < y->started_at ? -1 : 1;
    return x->req - y->req;
}

static int undelivered(const char *state)
{
    return strcmp(state, "pending") == 0 || strcmp(state, "sending") == 0;
}

static void add_attempt(struct seed *s, int req, long long started_at)
{
    s->atts = realloc(s->atts, (size_t)(s->na + 1) * sizeof *s->atts);
    assert_non_null(s->atts);
    s->atts[s->na++] = (struct attempt_def){.req = req, .started_at = started_at};
}

/* Writes the seed into the database: requests by store_replay_insert in one
 * transaction (so `received` is counted in the rollups as for any stored
 * request), then states, attempts and some non-zero delivered/failed/
 * retried/orphaned counters by SQL. */
static void write_seed(struct fx *f, struct store *st, struct seed *s)
{
    assert_int_equal(store_begin(st), 0);
    for (int i = 0; i < s->n; i++)
        assert_int_equal(store_replay_insert(st, &s->reqs[i].r), 1);
    assert_int_equal(store_commit(st), 0);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sql_exec(db, "BEGIN");
    sqlite3_stmt *up;
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE requests SET state = ?2 WHERE id = ?1", -1, &up, NULL),
        SQLITE_OK);
    for (int i = 0; i < s->n; i++) {
        sqlite3_bind_text(up, 1, s->reqs[i].r.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(up, 2, s->reqs[i].state, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(up), SQLITE_DONE);
        assert_int_equal(sqlite3_changes(db), 1);
        sqlite3_reset(up);
    }
    sqlite3_finalize(up);
    qsort(s->atts, (size_t)s->na, sizeof *s->atts, cmp_attempt);
    sqlite3_stmt *ins;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO attempts (request_seq, started_at, "
                                        "duration_ms, status, error) SELECT seq, ?2, 12, 503, "
                                        "'seeded' FROM requests WHERE id = ?1",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    for (int k = 0; k < s->na; k++) {
        sqlite3_bind_text(ins, 1, s->reqs[s->atts[k].req].r.id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, s->atts[k].started_at);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        assert_int_equal(sqlite3_changes(db), 1);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sql_exec(db, "UPDATE rollups SET delivered = 5 + day % 7, failed = 3, retried = 11, "
                 "orphaned = 2");
    sql_exec(db, "COMMIT");
    sqlite3_close(db);

    s->want_requests = s->want_undelivered = s->want_attempts = s->want_left_attempts = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->reqs[i].old) {
            s->want_requests++;
            s->want_undelivered += undelivered(s->reqs[i].state);
        }
    }
    for (int k = 0; k < s->na; k++) {
        if (s->atts[k].started_at < s->cutoff)
            s->want_attempts++; /* deleted by the attempts step, whoever owns it */
        else if (!s->reqs[s->atts[k].req].old)
            s->want_left_attempts++; /* young attempts of young requests stay */
        /* young attempts of old requests go with their request (not counted) */
    }
}

/* n_old requests received before the cutoff (the last one 1 ms before it),
 * then n_young from exactly the cutoff on, all in time order, spread over
 * webhooks wa/wb (old) and wa/wc (young). Each old request has two
 * attempts, 0.5 s and 1 s after it (so the last old request has young
 * attempts); each young one has one; young request 0 also has an attempt
 * started 5 days before the cutoff (an old attempt of a request that stays). */
static void build_seed(struct fx *f, struct seed *s, int n_old, int n_young, long long now,
                       long long retention_days)
{
    memset(s, 0, sizeof *s);
    s->now = now;
    s->cutoff = now - retention_days * DAY;
    s->n = n_old + n_young;
    s->reqs = calloc((size_t)s->n, sizeof *s->reqs);
    assert_non_null(s->reqs);
    for (int i = 0; i < s->n; i++) {
        struct seeded_req *q = &s->reqs[i];
        make_request(f, &q->r, i);
        q->old = i < n_old;
        q->state = STATES[i % NSTATES];
        if (q->old) {
            /* 10 days before the cutoff up to 1 ms before it */
            q->r.received_at = i == n_old - 1 ? s->cutoff - 1
                                              : s->cutoff - 10 * DAY + (long long)i * 60000;
            snprintf(q->r.webhook, sizeof q->r.webhook, "%s", i % 2 ? "wb" : "wa");
        } else {
            int j = i - n_old;
            q->r.received_at = j == 0 ? s->cutoff : s->cutoff + (long long)j * 3600000;
            if (q->r.received_at >= now)
                q->r.received_at = now - 1;
            snprintf(q->r.webhook, sizeof q->r.webhook, "%s", j % 2 ? "wc" : "wa");
        }
        if (q->old) {
            add_attempt(s, i, q->r.received_at + 500);
            add_attempt(s, i, q->r.received_at + 1000);
        } else {
            add_attempt(s, i, q->r.received_at + 500);
            if (i == n_old)
                add_attempt(s, i, s->cutoff - 5 * DAY);
        }
    }
}

static void free_seed(struct seed *s)
{
    for (int i = 0; i < s->n; i++)
        req_free(&s->reqs[i].r);
    free(s->reqs);
    free(s->atts);
}

/* ---- rollups -------------------------------------------------------------------- */

#define MAX_RU 64
struct ru_set {
    int n;
    struct {
        char webhook[SOLDR_LABEL_MAX + 1];
        struct store_rollup_row r;
    } row[MAX_RU];
};

static int collect_ru(void *arg, const struct store_rollup_row *r)
{
    struct ru_set *set = arg;
    assert_true(set->n < MAX_RU);
    snprintf(set->row[set->n].webhook, sizeof set->row[0].webhook, "%s", r->webhook);
    set->row[set->n].r = *r;
    set->row[set->n].r.webhook = set->row[set->n].webhook;
    set->n++;
    return 0;
}

static void read_rollups(struct store *st, struct ru_set *set)
{
    memset(set, 0, sizeof *set);
    assert_int_equal(store_rollups(st, collect_ru, set), 0);
}

static const struct store_rollup_row *find_ru(const struct ru_set *set, const char *wh,
                                              long long day)
{
    for (int i = 0; i < set->n; i++)
        if (set->row[i].r.day == day && strcmp(set->row[i].webhook, wh) == 0)
            return &set->row[i].r;
    return NULL;
}

static void assert_ru_equal(const struct ru_set *a, const struct ru_set *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const struct store_rollup_row *x = &a->row[i].r, *y = &b->row[i].r;
        assert_string_equal(a->row[i].webhook, b->row[i].webhook);
        if (x->day != y->day || x->received != y->received || x->delivered != y->delivered ||
            x->failed != y->failed || x->retried != y->retried || x->orphaned != y->orphaned ||
            x->purged != y->purged || x->purged_undelivered != y->purged_undelivered)
            fail_msg("rollup %s/%lld differs", a->row[i].webhook, x->day);
    }
}

/* After a purge: every row of `before` still there with received, delivered,
 * failed, retried and orphaned unchanged; rows it added carry nothing but
 * purge counts and are dated today (UTC, between t0 and t1); per webhook
 * the purged counts grew by exactly what the seed's deleted requests say. */
static void check_rollups_after(const struct seed *s, const struct ru_set *before,
                                const struct ru_set *after, long long t0, long long t1)
{
    for (int i = 0; i < before->n; i++) {
        const struct store_rollup_row *b = &before->row[i].r;
        const struct store_rollup_row *a = find_ru(after, b->webhook, b->day);
        if (!a)
            fail_msg("rollup row %s/%lld disappeared", b->webhook, b->day);
        if (a->received != b->received || a->delivered != b->delivered ||
            a->failed != b->failed || a->retried != b->retried || a->orphaned != b->orphaned)
            fail_msg("rollup %s/%lld changed by the purge: received %lld->%lld delivered "
                     "%lld->%lld failed %lld->%lld retried %lld->%lld orphaned %lld->%lld",
                     b->webhook, b->day, b->received, a->received, b->delivered, a->delivered,
                     b->failed, a->failed, b->retried, a->retried, b->orphaned, a->orphaned);
    }
    const char *hooks[] = {"wa", "wb", "wc"};
    for (int h = 0; h < 3; h++) {
        long long want = 0, want_u = 0;
        for (int i = 0; i < s->n; i++) {
            if (s->reqs[i].old && strcmp(s->reqs[i].r.webhook, hooks[h]) == 0) {
                want++;
                want_u += undelivered(s->reqs[i].state);
            }
        }
        long long got = 0, got_u = 0;
        for (int i = 0; i < after->n; i++) {
            const struct store_rollup_row *a = &after->row[i].r;
            if (strcmp(a->webhook, hooks[h]) != 0)
                continue;
            const struct store_rollup_row *b = find_ru(before, a->webhook, a->day);
            long long dp = a->purged - (b ? b->purged : 0);
            long long du = a->purged_undelivered - (b ? b->purged_undelivered : 0);
            if (dp || du) {
                /* counted under the day of the purge, not of the request */
                if (a->day < t0 / DAY || a->day > t1 / DAY)
                    fail_msg("purge of %s counted under day %lld, not today (%lld)", a->webhook,
                             a->day, t0 / DAY);
            }
            if (!b && (a->received || a->delivered || a->failed || a->retried || a->orphaned))
                fail_msg("the purge created rollup %s/%lld with non-purge counts", a->webhook,
                         a->day);
            got += dp;
            got_u += du;
        }
        if (got != want || got_u != want_u)
            fail_msg("webhook %s: purged %lld (%lld undelivered), want %lld (%lld)", hooks[h], got,
                     got_u, want, want_u);
    }
}

/* ---- checks on the database --------------------------------------------------------- */

static long long count_of(struct fx *f, const char *sql)
{
    return sql_int(f->path, sql);
}

/* After a complete purge at s->cutoff: the old requests, their bodies and
 * every attempt older than the cutoff are gone; the young requests are
 * there byte for byte, with their young attempts. */
static void check_purged(struct fx *f, struct store *st, const struct seed *s, int extra)
{
    long long young = s->n - s->want_requests;
    for (int i = 0; i < s->n; i++) {
        if (s->reqs[i].old)
            assert_not_stored(st, s->reqs[i].r.id);
        else
            assert_stored(st, &s->reqs[i].r);
    }
    assert_int_equal(count_of(f, "SELECT count(*) FROM requests"), young + extra);
    assert_int_equal(count_of(f, "SELECT count(*) FROM request_bodies"), young + extra);
    assert_int_equal(count_of(f, "SELECT count(*) FROM request_bodies WHERE seq NOT IN "
                                 "(SELECT seq FROM requests)"),
                     0);
    assert_int_equal(count_of(f, "SELECT count(*) FROM attempts WHERE request_seq NOT IN "
                                 "(SELECT seq FROM requests)"),
                     0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM requests WHERE received_at < %lld",
             s->cutoff);
    assert_int_equal(count_of(f, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE started_at < %lld", s->cutoff);
    assert_int_equal(count_of(f, sql), 0);
    assert_int_equal(count_of(f, "SELECT count(*) FROM attempts"), s->want_left_attempts);
    /* the states of the young rows were not touched (rows added live have no attempts) */
    for (int i = 0; i < s->n; i++) {
        if (s->reqs[i].old)
            continue;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM requests WHERE id = '%s' AND state = '%s'",
                 s->reqs[i].r.id, s->reqs[i].state);
        assert_int_equal(count_of(f, sql), 1);
    }
}

static void check_counts(const struct store_purge_counts *c, const struct seed *s)
{
    if (c->requests != s->want_requests || c->undelivered != s->want_undelivered ||
        c->attempts != s->want_attempts)
        fail_msg("purge counted %lld requests (%lld undelivered), %lld attempts; want %lld (%lld), "
                 "%lld",
                 c->requests, c->undelivered, c->attempts, s->want_requests, s->want_undelivered,
                 s->want_attempts);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void purge_deletes_old_keeps_young(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct seed s;
    build_seed(f, &s, 24, 16, time_now_ms(), 30);
    write_seed(f, st, &s);
    assert_int_equal(s.want_requests, 24);
    assert_int_equal(s.want_undelivered, 10); /* 24 over 5 states: 5 pending + 5 sending */
    assert_int_equal(s.want_attempts, 24 * 2 - 2 + 1);
    assert_int_equal(count_of(f, "SELECT count(*) FROM attempts"), 24 * 2 + 16 + 1);

    struct ru_set before, after;
    read_rollups(st, &before);
    assert_true(before.n > 0);
    long long t0 = time_now_ms();
    struct store_purge_counts c;
    memset(&c, 0x5a, sizeof c);
    assert_int_equal(store_purge_now(st, s.cutoff, 1000, 0, &c), 0);
    long long t1 = time_now_ms();
    check_counts(&c, &s);
    check_purged(f, st, &s, 0);
    /* the young request with an attempt older than the cutoff: request and
     * its young attempt stay, the old attempt is gone */
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM attempts JOIN requests ON seq = request_seq WHERE requests.id = '%s'",
             s.reqs[24].r.id);
    assert_int_equal(count_of(f, sql), 1);
    read_rollups(st, &after);
    check_rollups_after(&s, &before, &after, t0, t1);

    /* a second pass finds nothing and changes nothing */
    assert_int_equal(store_purge_now(st, s.cutoff, 1000, 0, &c), 0);
    assert_int_equal(c.requests, 0);
    assert_int_equal(c.attempts, 0);
    assert_int_equal(c.undelivered, 0);
    struct ru_set again;
    read_rollups(st, &again);
    assert_ru_equal(&again, &after);
    check_purged(f, st, &s, 0);
    store_close(st);
    free_seed(&s);
}

static void purge_dry_run_counts_only(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct seed s;
    build_seed(f, &s, 37, 11, time_now_ms(), 30);
    write_seed(f, st, &s);
    struct ru_set before, after;
    read_rollups(st, &before);
    long long reqs = count_of(f, "SELECT count(*) FROM requests");
    long long bodies = count_of(f, "SELECT count(*) FROM request_bodies");
    long long atts = count_of(f, "SELECT count(*) FROM attempts");

    struct store_purge_counts dry;
    assert_int_equal(store_purge_now(st, s.cutoff, 5, 1, &dry), 0);
    check_counts(&dry, &s);
    assert_int_equal(count_of(f, "SELECT count(*) FROM requests"), reqs);
    assert_int_equal(count_of(f, "SELECT count(*) FROM request_bodies"), bodies);
    assert_int_equal(count_of(f, "SELECT count(*) FROM attempts"), atts);
    read_rollups(st, &after);
    assert_ru_equal(&after, &before);
    for (int i = 0; i < s.n; i++)
        assert_stored(st, &s.reqs[i].r);

    /* the real pass then deletes what the dry run announced */
    struct store_purge_counts c;
    long long t0 = time_now_ms();
    assert_int_equal(store_purge_now(st, s.cutoff, 5, 0, &c), 0);
    long long t1 = time_now_ms();
    assert_memory_equal(&c, &dry, sizeof c);
    check_purged(f, st, &s, 0);
    read_rollups(st, &after);
    check_rollups_after(&s, &before, &after, t0, t1);
    /* and a dry run now finds nothing */
    assert_int_equal(store_purge_now(st, s.cutoff, 5, 1, &dry), 0);
    assert_int_equal(dry.requests + dry.attempts + dry.undelivered, 0);
    store_close(st);
    free_seed(&s);
}

/* The same database purged with chunks of 1000, 7 and 1 rows: the same
 * counts, rows left and rollups. */
static void purge_chunk_size_does_not_matter(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct seed s;
    build_seed(f, &s, 300, 100, time_now_ms(), 30);
    write_seed(f, st, &s);
    store_close(st);
    static const int limits[] = {1000, 7, 1};
    enum { NL = 3 };
    char paths[NL][PATH_MAX + 32];
    sqlite3 *src;
    assert_int_equal(sqlite3_open(f->path, &src), SQLITE_OK);
    for (int k = 0; k < NL; k++) {
        char sql[PATH_MAX + 64];
        if (snprintf(paths[k], sizeof paths[k], "%s/copy-%d.db", f->dir, limits[k]) >=
                (int)sizeof paths[k] ||
            snprintf(sql, sizeof sql, "VACUUM INTO '%s'", paths[k]) >= (int)sizeof sql)
            fail_msg("path too long: %s", f->dir);
        sql_exec(src, sql);
    }
    sqlite3_close(src);

    struct store_purge_counts c[NL];
    struct ru_set before, after[NL];
    long long t0 = time_now_ms(), t1 = 0;
    for (int k = 0; k < NL; k++) {
        struct store_opts o = f->opts;
        o.path = paths[k];
        struct store *cs = NULL;
        assert_int_equal(store_open(&cs, &o), 0);
        if (k == 0)
            read_rollups(cs, &before);
        assert_int_equal(store_purge_now(cs, s.cutoff, limits[k], 0, &c[k]), 0);
        t1 = time_now_ms();
        check_counts(&c[k], &s);
        read_rollups(cs, &after[k]);
        store_close(cs);
        struct fx view = *f; /* check_purged reads f->path */
        if (snprintf(view.path, sizeof view.path, "%s", paths[k]) >= (int)sizeof view.path)
            fail_msg("path too long: %s", paths[k]);
        assert_int_equal(store_open(&cs, &o), 0);
        check_purged(&view, cs, &s, 0);
        store_close(cs);
    }
    for (int k = 0; k < NL; k++)
        check_rollups_after(&s, &before, &after[k], t0, t1);
    /* identical rows left: same seqs, ids and attempts in all copies */
    for (int k = 1; k < NL; k++) {
        char sql[2 * PATH_MAX + 300];
        snprintf(sql, sizeof sql,
                 "SELECT (SELECT count(*) FROM (SELECT seq, id, state FROM requests EXCEPT "
                 "SELECT seq, id, state FROM o.requests)) + (SELECT count(*) FROM (SELECT id, "
                 "request_seq, started_at FROM attempts EXCEPT SELECT id, request_seq, "
                 "started_at FROM o.attempts)) + (SELECT count(*) FROM requests) - (SELECT "
                 "count(*) FROM o.requests)");
        sqlite3 *db;
        assert_int_equal(sqlite3_open(paths[k], &db), SQLITE_OK);
        char att[PATH_MAX + 64];
        snprintf(att, sizeof att, "ATTACH '%s' AS o", paths[0]);
        sql_exec(db, att);
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        if (sqlite3_column_int64(q, 0) != 0)
            fail_msg("chunks of %d left other rows than chunks of %d", limits[k], limits[0]);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    free_seed(&s);
}

/* Retentions of 365 and 90 days (and then 30): each cutoff takes exactly
 * the rows older than it. */
static void purge_long_retentions(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    long long now = time_now_ms();
    static const long long ages_days[] = {400, 366, 364, 100, 91, 89, 31, 29, 1};
    enum { N = 9 };
    struct soldr_request reqs[N];
    assert_int_equal(store_begin(st), 0);
    for (int i = 0; i < N; i++) {
        make_request(f, &reqs[i], i);
        reqs[i].received_at = now - ages_days[i] * DAY;
        assert_int_equal(store_replay_insert(st, &reqs[i]), 1);
    }
    assert_int_equal(store_commit(st), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sql_exec(db, "INSERT INTO attempts (request_seq, started_at) "
                 "SELECT seq, received_at + 60000 FROM requests ORDER BY seq");
    sqlite3_close(db);

    static const struct {
        long long days;
        long long want; /* requests deleted */
    } steps[] = {{365, 2}, {90, 3}, {30, 2}};
    int gone = 0;
    for (int k = 0; k < 3; k++) {
        struct store_purge_counts c, dry;
        long long cutoff = now - steps[k].days * DAY;
        assert_int_equal(store_purge_now(st, cutoff, 2000, 1, &dry), 0);
        assert_int_equal(dry.requests, steps[k].want);
        assert_int_equal(store_purge_now(st, cutoff, 2000, 0, &c), 0);
        assert_int_equal(c.requests, steps[k].want);
        assert_int_equal(c.attempts, steps[k].want); /* one each, 1 min after the request */
        assert_int_equal(c.undelivered, steps[k].want); /* all still pending */
        gone += (int)steps[k].want;
        for (int i = 0; i < N; i++) {
            if (i < gone)
                assert_not_stored(st, reqs[i].id);
            else
                assert_stored(st, &reqs[i]);
        }
        assert_int_equal(count_of(f, "SELECT count(*) FROM attempts"), N - gone);
    }
    for (int i = 0; i < N; i++)
        req_free(&reqs[i]);
    store_close(st);
}

/* DESIGN: a chunk looks only at the oldest `limit` rows by seq, so an old
 * request stored after younger ones (a late replay) stays until the rows
 * before it are gone, and is purged then. */
static void purge_out_of_order_row_waits_for_rows_before_it(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    long long now = time_now_ms();
    struct soldr_request reqs[4];
    assert_int_equal(store_begin(st), 0);
    for (int i = 0; i < 4; i++) {
        make_request(f, &reqs[i], i);
        /* three young rows (20, 19, 18 days), then one replayed 40 days old */
        reqs[i].received_at = now - (i < 3 ? 20 - i : 40) * DAY;
        assert_int_equal(store_replay_insert(st, &reqs[i]), 1);
    }
    assert_int_equal(store_commit(st), 0);
    struct store_purge_counts c;
    assert_int_equal(store_purge_now(st, now - 30 * DAY, 2, 0, &c), 0);
    assert_int_equal(c.requests, 0);
    for (int i = 0; i < 4; i++)
        assert_stored(st, &reqs[i]);
    /* 18.5 days later all four are older than the cutoff */
    assert_int_equal(store_purge_now(st, now - 17 * DAY, 2, 0, &c), 0);
    assert_int_equal(c.requests, 4);
    for (int i = 0; i < 4; i++) {
        assert_not_stored(st, reqs[i].id);
        req_free(&reqs[i]);
    }
    store_close(st);
}

/* ---- chunks on the writer thread ---------------------------------------------------- */

#define NLIVE 20

struct pctx;
struct ins_slot {
    struct pctx *p;
    int idx;
};

struct pctx {
    struct store *st;
    long long cutoff;
    int limit;
    int chunks, inserts_queued, inserts_done, stop_done, bad_order, status;
    struct store_purge_counts total;
    long long max_in_chunk;
    struct soldr_request live[NLIVE]; /* young requests inserted between chunks */
    int outcome[NLIVE];
    struct ins_slot slots[NLIVE];
};

static void on_stopped(void *arg)
{
    struct pctx *p = arg;
    p->stop_done++;
}

static void on_insert(void *arg, int outcome)
{
    struct ins_slot *s = arg;
    s->p->outcome[s->idx] = outcome;
    s->p->inserts_done++;
}

static void queue_insert(struct pctx *p)
{
    int i = p->inserts_queued++;
    p->slots[i] = (struct ins_slot){.p = p, .idx = i};
    assert_int_equal(store_insert_request(p->st, &p->live[i], on_insert, &p->slots[i]), 0);
}

static void on_chunk(void *arg, int status, const struct store_purge_counts *c)
{
    struct pctx *p = arg;
    p->chunks++;
    if (status != 0 && p->status == 0)
        p->status = status;
    p->total.attempts += c->attempts;
    p->total.requests += c->requests;
    p->total.undelivered += c->undelivered;
    if (c->attempts > p->max_in_chunk)
        p->max_in_chunk = c->attempts;
    if (c->requests > p->max_in_chunk)
        p->max_in_chunk = c->requests;
    if (c->attempts && c->requests)
        p->bad_order++; /* a chunk does attempts or requests, not both */
    /* the insert queued ahead of this chunk committed before it */
    if (p->inserts_done < p->inserts_queued)
        p->bad_order++;
    if (status != 0 || (c->attempts == 0 && c->requests == 0)) {
        store_stop(p->st, on_stopped, p);
        return;
    }
    /* ingest arriving during the purge: queued ahead of the next chunk */
    if (p->inserts_queued < NLIVE)
        queue_insert(p);
    assert_int_equal(store_purge_chunk(p->st, p->cutoff, p->limit, on_chunk, p), 0);
}

static void purge_chunks_on_writer_loop(void **state)
{
    struct fx *f = *state;
    struct store *st = open_store(f);
    struct seed s;
    build_seed(f, &s, 40, 20, time_now_ms(), 30);
    write_seed(f, st, &s);
    struct ru_set before, after;
    read_rollups(st, &before);

    struct pctx *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->st = st;
    p->cutoff = s.cutoff;
    p->limit = 7;
    for (int i = 0; i < NLIVE; i++) {
        make_request(f, &p->live[i], 1000 + i);
        p->live[i].received_at = time_now_ms();
        snprintf(p->live[i].webhook, sizeof p->live[i].webhook, "%s", "live");
        p->outcome[i] = 12345;
    }
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(store_start(st, &loop), 0);
    long long t0 = time_now_ms();
    queue_insert(p); /* one insert ahead of the first chunk as well */
    assert_int_equal(store_purge_chunk(st, s.cutoff, p->limit, on_chunk, p), 0);

    long long deadline = time_now_ms() + 20000;
    while (!p->stop_done) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (p->stop_done)
            break;
        if (time_now_ms() > deadline)
            fail_msg("timed out: %d chunks, stop_done %d", p->chunks, p->stop_done);
        usleep(200);
    }
    long long t1 = time_now_ms();
    int rc = uv_loop_close(&loop);
    if (rc != 0) {
        uv_print_all_handles(&loop, stderr);
        fail_msg("uv_loop_close = %d (%s): a handle was leaked", rc, uv_strerror(rc));
    }
    assert_int_equal(p->stop_done, 1);
    assert_int_equal(p->status, 0);
    check_counts(&p->total, &s);
    /* chunks of at most 7 rows: ceil(attempts / 7) + ceil(requests / 7), and
     * a last one that finds nothing */
    assert_true(p->max_in_chunk <= 7);
    int want_chunks = (int)((s.want_attempts + 6) / 7 + (s.want_requests + 6) / 7 + 1);
    assert_int_equal(p->chunks, want_chunks);
    assert_int_equal(p->bad_order, 0);
    assert_int_equal(p->inserts_done, p->inserts_queued);
    /* one ahead of each chunk but the last */
    int nlive = want_chunks < NLIVE ? want_chunks : NLIVE;
    assert_int_equal(p->inserts_queued, nlive);
    for (int i = 0; i < nlive; i++)
        assert_int_equal(p->outcome[i], STORE_COMMITTED);

    /* after store_stop the connection serves the synchronous API again */
    check_purged(f, st, &s, nlive);
    for (int i = 0; i < NLIVE; i++) {
        if (i < nlive)
            assert_stored(st, &p->live[i]);
        else
            assert_not_stored(st, p->live[i].id);
        req_free(&p->live[i]);
    }
    read_rollups(st, &after);
    /* the live rows have rollups of their own (webhook 'live'): leave them out */
    struct ru_set *seed_only = calloc(1, sizeof *seed_only);
    assert_non_null(seed_only);
    for (int i = 0; i < after.n; i++) {
        if (strcmp(after.row[i].webhook, "live") == 0)
            continue;
        seed_only->row[seed_only->n] = after.row[i];
        seed_only->row[seed_only->n].r.webhook = seed_only->row[seed_only->n].webhook;
        seed_only->n++;
    }
    check_rollups_after(&s, &before, seed_only, t0, t1);
    free(seed_only);
    free(p);
    store_close(st);
    free_seed(&s);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(purge_deletes_old_keeps_young, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_dry_run_counts_only, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_chunk_size_does_not_matter, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_long_retentions, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_out_of_order_row_waits_for_rows_before_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(purge_chunks_on_writer_loop, setup, teardown),
    };
    return cmocka_run_group_tests_name("purge", tests, NULL, NULL);
}
