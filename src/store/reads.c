/* Requests for the management API: the read half of requests_api.h (list,
 * detail, stats), on read-only connections from any thread.
 *
 * Notes on the list query:
 *  1. Pages are keyset-paginated on the id (UUIDv7: time-ordered), newest
 *     first, never with OFFSET. A request replayed from the stdout log keeps
 *     its old id and received_at, so it lands where it was received, not where
 *     it was inserted (seq would put it on top).
 *  2. Ingest makes the id from received_at: id_new() takes received_at as its
 *     clock and only ever moves forward from it, so
 *     id_time(id) >= received_at, and id_time exceeds received_at only by a
 *     backward step of the wall clock within one run (or a burst of more than
 *     4096 requests in one ms). So `from` becomes an exact id lower bound,
 *     and `to` an id upper bound with ID_SKEW_MS of slack; the received_at
 *     conditions stay in the query, so results are exact, and the id bounds
 *     only let the id index narrow the scan.
 *  3. `state` is one of five words checked here and written into the SQL as
 *     a literal, so SQLite can use the partial indexes on state (a bound
 *     parameter cannot match a partial index's WHERE). Every other value is
 *     bound.
 *  4. The queue states (pending, sending) are few rows in normal operation
 *     but far apart in id order, so they are read through their partial
 *     indexes and sorted (a top-N sort bounded by the queue), not found by
 *     walking the id index across every delivered request: "+r.id" keeps
 *     the planner off the id index for them. The failed state has a partial
 *     index on id itself (requests_failed), in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/text.h"
#include "store/requests_api.h"
#include "store/store_int.h"

#define ID_SKEW_MS (10LL * 60 * 1000) /* note 2 */
#define STATS_DAYS 30
#define DAY_MS     86400000LL

static const char *const states[] = {"pending", "sending", "delivered", "failed", "orphaned"};

static int read_fail(struct store_reader *rd, const char *event, int rc)
{
    log_error(event, "read failed: %s (%d): %s", sqlite3_errstr(rc), rc, sqlite3_errmsg(rd->db));
    return SOLDR_ESTORE;
}

static int prepare(struct store_reader *rd, const char *sql, sqlite3_stmt **s)
{
    int rc = sqlite3_prepare_v2(rd->db, sql, -1, s, NULL);
    return rc == SQLITE_OK ? 0 : read_fail(rd, "store.read_prepare", rc);
}

/* ---- bytes to JSON ------------------------------------------------------------ */

/* A JSON string for s[0..n): as is when valid UTF-8, else read as Latin-1
 * (what an HTTP header byte >= 0x80 means, RFC 9110 obs-text). NUL bytes,
 * which no stored header or target holds, become U+FFFD. */
static cJSON *text_json(const char *s, size_t n)
{
    char *tmp = malloc(3 * n + 1);
    if (!tmp)
        return NULL;
    size_t o = 0;
    if (utf8_valid(s, n)) {
        memcpy(tmp, s, n);
        o = n;
    } else {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == 0) {
                memcpy(tmp + o, "\xef\xbf\xbd", 3), o += 3;
            } else if (c < 0x80) {
                tmp[o++] = (char)c;
            } else {
                tmp[o++] = (char)(0xc0 | c >> 6);
                tmp[o++] = (char)(0x80 | (c & 0x3f));
            }
        }
    }
    tmp[o] = '\0';
    cJSON *j = cJSON_CreateString(tmp);
    free(tmp);
    return j;
}

static int add_item(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return -1;
    cJSON_AddItemToObject(obj, key, item);
    return 0;
}

/* Column col as text (UTF-8 or Latin-1, see text_json), or null. */
static int add_text_col(cJSON *obj, const char *key, sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return add_item(obj, key, cJSON_CreateNull());
    const char *p = (const char *)sqlite3_column_text(s, col);
    return add_item(obj, key, text_json(p ? p : "", (size_t)sqlite3_column_bytes(s, col)));
}

static int add_int_col(cJSON *obj, const char *key, sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return add_item(obj, key, cJSON_CreateNull());
    return add_item(obj, key, cJSON_CreateNumber((double)sqlite3_column_int64(s, col)));
}

/* Bytes under `key` (text, when valid UTF-8) or `key`_b64, the other null. */
static int add_bytes(cJSON *obj, const char *key, const void *p, size_t n, int is_null)
{
    char b64key[64];
    snprintf(b64key, sizeof b64key, "%s_b64", key);
    if (is_null)
        return add_item(obj, key, cJSON_CreateNull()) || add_item(obj, b64key, cJSON_CreateNull());
    if (utf8_valid(p, n)) {
        char *tmp = malloc(n + 1);
        if (!tmp)
            return -1;
        if (n)
            memcpy(tmp, p, n);
        tmp[n] = '\0';
        int rc = add_item(obj, key, cJSON_CreateString(tmp));
        free(tmp);
        return rc || add_item(obj, b64key, cJSON_CreateNull());
    }
    char *enc = b64_encode(p, n);
    if (!enc)
        return -1;
    int rc = add_item(obj, key, cJSON_CreateNull());
    rc = rc || add_item(obj, b64key, cJSON_CreateString(enc));
    free(enc);
    return rc;
}

static int add_blob_col(cJSON *obj, const char *key, sqlite3_stmt *s, int col)
{
    const void *p = sqlite3_column_blob(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    return add_bytes(obj, key, p ? p : "", n, sqlite3_column_type(s, col) == SQLITE_NULL);
}

/* The stored "Name: value\r\n" block as [[name, value], ...]. */
static int add_headers_col(cJSON *obj, sqlite3_stmt *s, int col)
{
    const char *blk = (const char *)sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    struct soldr_request r;
    req_init(&r, n + 1024);
    cJSON *arr = cJSON_CreateArray();
    int rc = arr && blk ? req_headers_parse(&r, blk, n) : 0;
    if (rc)
        log_warn("store.read_headers", "a stored header block does not parse (%s)",
                 soldr_strerror(rc));
    for (size_t i = 0; arr && i < r.nheaders; i++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON *k = text_json(req_str(&r, r.headers[i].name), r.headers[i].name.len);
        cJSON *v = text_json(req_str(&r, r.headers[i].value), r.headers[i].value.len);
        if (pair && k && v) {
            cJSON_AddItemToArray(pair, k);
            cJSON_AddItemToArray(pair, v);
            cJSON_AddItemToArray(arr, pair);
            continue;
        }
        cJSON_Delete(pair), cJSON_Delete(k), cJSON_Delete(v);
        cJSON_Delete(arr);
        arr = NULL;
    }
    req_free(&r);
    return add_item(obj, "headers", arr);
}

/* ---- list ------------------------------------------------------------------------ */

/* The smallest id string of unix ms t: "tttttttt-tttt" (13 characters), which
 * sorts before every id of that millisecond and after every earlier one. */
static void id_prefix(long long t, char out[14])
{
    unsigned long long u = t < 0 ? 0 : (unsigned long long)t;
    if (u > 0xffffffffffffULL)
        u = 0xffffffffffffULL;
    snprintf(out, 14, "%08llx-%04llx", u >> 16, u & 0xffff);
}

static const char *state_word(const char *s)
{
    for (size_t i = 0; s && i < sizeof states / sizeof states[0]; i++)
        if (strcmp(s, states[i]) == 0)
            return states[i];
    return NULL;
}

#define SUMMARY_COLUMNS                                                                            \
    "r.id, r.webhook, r.received_at, r.method, r.target, r.state, r.attempts, r.last_status, "     \
    "r.next_attempt_at, EXISTS (SELECT 1 FROM request_edits e WHERE e.seq = r.seq)"

/* Columns 0..9 of SUMMARY_COLUMNS into obj. */
static int add_summary(cJSON *o, sqlite3_stmt *s)
{
    return add_text_col(o, "id", s, 0) || add_text_col(o, "webhook", s, 1) ||
           add_int_col(o, "received_at", s, 2) || add_text_col(o, "method", s, 3) ||
           add_text_col(o, "target", s, 4) || add_text_col(o, "state", s, 5) ||
           add_int_col(o, "attempts", s, 6) || add_int_col(o, "last_status", s, 7) ||
           add_int_col(o, "next_attempt_at", s, 8) ||
           add_item(o, "edited", cJSON_CreateBool(sqlite3_column_int(s, 9)));
}

/* store_int.h */
int store__list_sql(const struct store_filter *f, int has_cursor, char *sql, size_t cap)
{
    const char *st = f->state ? state_word(f->state) : NULL;
    if (f->state && !st)
        return -1;
    /* Note 4: the queue states are listed from their partial index. */
    int queue = st && (strcmp(st, "pending") == 0 || strcmp(st, "sending") == 0);
    const char *id = queue ? "+r.id" : "r.id";
    char state_cond[64] = "", from[64] = "", to[64] = "", cur[32] = "";
    if (st)
        snprintf(state_cond, sizeof state_cond, " AND r.state = '%s'", st);
    if (f->from)
        snprintf(from, sizeof from, " AND r.received_at >= ?2 AND %s >= ?3", id);
    if (f->to)
        snprintf(to, sizeof to, " AND r.received_at < ?4 AND %s < ?5", id);
    if (has_cursor)
        snprintf(cur, sizeof cur, " AND %s < ?8", id);
    int n = snprintf(sql, cap,
                     "SELECT " SUMMARY_COLUMNS " FROM requests r WHERE 1%s%s%s%s%s%s%s "
                     "ORDER BY %s DESC LIMIT ?9",
                     f->webhook ? " AND r.webhook = ?1" : "", state_cond, from, to,
                     f->status ? " AND r.last_status = ?6" : "",
                     f->q ? " AND instr(r.target, ?7) > 0" : "", cur, id);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

cJSON *store_read_requests(struct store_reader *rd, const struct store_filter *f, int limit,
                           const char *cursor)
{
    char sql[1024], lo[14], hi[14];
    if (limit < 1 || limit > 500 || store__list_sql(f, cursor != NULL, sql, sizeof sql))
        return NULL;
    sqlite3_stmt *s;
    if (prepare(rd, sql, &s))
        return NULL;
    id_prefix(f->from, lo);
    id_prefix(f->to > 0 && f->to < 0x7fffffffffffffffLL - ID_SKEW_MS ? f->to + ID_SKEW_MS
                                                                     : 0xffffffffffffLL,
              hi);
    if (f->webhook)
        sqlite3_bind_text(s, 1, f->webhook, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, f->from);
    sqlite3_bind_text(s, 3, lo, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, f->to);
    sqlite3_bind_text(s, 5, hi, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, f->status);
    if (f->q)
        sqlite3_bind_text(s, 7, f->q, -1, SQLITE_STATIC);
    if (cursor)
        sqlite3_bind_text(s, 8, cursor, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 9, limit + 1); /* one more: is there a next page? */

    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "requests");
    int rc = SQLITE_DONE, n = 0, bad = !arr;
    char last[SOLDR_ID_LEN + 1] = "";
    while (!bad && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (++n > limit)
            break;
        cJSON *o = cJSON_CreateObject();
        bad = !o || add_summary(o, s);
        if (o)
            cJSON_AddItemToArray(arr, o);
        snprintf(last, sizeof last, "%s", (const char *)sqlite3_column_text(s, 0));
    }
    if (!bad && rc != SQLITE_ROW && rc != SQLITE_DONE)
        bad = read_fail(rd, "store.read_requests", rc);
    sqlite3_finalize(s);
    if (!bad)
        bad = !(n > limit ? cJSON_AddStringToObject(doc, "next_cursor", last)
                          : cJSON_AddNullToObject(doc, "next_cursor"));
    if (bad) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* ---- one request -------------------------------------------------------------- */

static cJSON *edit_json(struct store_reader *rd, long long seq, int *err)
{
    sqlite3_stmt *s;
    *err = prepare(rd,
                   "SELECT method, target, headers, body, edited_at FROM request_edits "
                   "WHERE seq = ?1",
                   &s);
    if (*err)
        return NULL;
    sqlite3_bind_int64(s, 1, seq);
    int rc = sqlite3_step(s);
    cJSON *o = NULL;
    if (rc == SQLITE_ROW) {
        o = cJSON_CreateObject();
        if (!o || add_text_col(o, "method", s, 0) || add_text_col(o, "target", s, 1) ||
            add_headers_col(o, s, 2) || add_blob_col(o, "body", s, 3) ||
            add_int_col(o, "edited_at", s, 4)) {
            cJSON_Delete(o);
            o = NULL;
            *err = UV_ENOMEM;
        }
    } else if (rc != SQLITE_DONE) {
        *err = read_fail(rd, "store.read_edit", rc);
    }
    sqlite3_finalize(s);
    return o;
}

static cJSON *attempts_json(struct store_reader *rd, long long seq)
{
    sqlite3_stmt *s;
    if (prepare(rd,
                "SELECT id, started_at, duration_ms, status, response_headers, response_body, "
                "error, manual FROM attempts WHERE request_seq = ?1 ORDER BY id",
                &s))
        return NULL;
    sqlite3_bind_int64(s, 1, seq);
    cJSON *arr = cJSON_CreateArray();
    int rc = SQLITE_DONE, bad = !arr;
    while (!bad && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        bad = !o || add_int_col(o, "id", s, 0) || add_int_col(o, "started_at", s, 1) ||
              add_int_col(o, "duration_ms", s, 2) || add_int_col(o, "status", s, 3) ||
              add_text_col(o, "response_headers", s, 4) || add_blob_col(o, "response_body", s, 5) ||
              add_text_col(o, "error", s, 6) ||
              add_item(o, "manual", cJSON_CreateBool(sqlite3_column_int(s, 7)));
        if (o)
            cJSON_AddItemToArray(arr, o);
    }
    if (!bad && rc != SQLITE_DONE)
        bad = read_fail(rd, "store.read_attempts", rc);
    sqlite3_finalize(s);
    if (bad) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

/* The request row and its payload as a detail; *seq receives its seq. */
static cJSON *detail_json(struct store_reader *rd, const char *id, long long *seq, int *status)
{
    sqlite3_stmt *s;
    if (prepare(rd,
                "SELECT " SUMMARY_COLUMNS ", r.seq, r.peer, r.completed_at, "
                "r.resend_requested_at, b.headers, b.body "
                "FROM requests r LEFT JOIN request_bodies b ON b.seq = r.seq WHERE r.id = ?1",
                &s))
        return NULL;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    cJSON *o = NULL;
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 10);
        o = cJSON_CreateObject();
        if (!o || add_summary(o, s) || add_text_col(o, "peer", s, 11) ||
            add_int_col(o, "completed_at", s, 12) || add_int_col(o, "resend_requested_at", s, 13) ||
            add_headers_col(o, s, 14) || add_blob_col(o, "body", s, 15)) {
            cJSON_Delete(o);
            o = NULL;
        }
    } else if (rc == SQLITE_DONE) {
        *status = 404;
    } else {
        read_fail(rd, "store.read_request", rc);
    }
    sqlite3_finalize(s);
    return o;
}

cJSON *store_read_request(struct store_reader *rd, const char *id, int *status)
{
    *status = 503;
    /* One snapshot for the row, its edit and its attempts. */
    int rc = sqlite3_exec(rd->db, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        read_fail(rd, "store.read_begin", rc);
        return NULL;
    }
    long long seq = 0;
    int err = 0;
    cJSON *doc = NULL, *req = detail_json(rd, id, &seq, status);
    cJSON *edit = req ? edit_json(rd, seq, &err) : NULL;
    cJSON *atts = req && !err ? attempts_json(rd, seq) : NULL;
    sqlite3_exec(rd->db, "COMMIT", NULL, NULL, NULL);
    if (req && !err && atts && (doc = cJSON_CreateObject())) {
        cJSON_ReplaceItemInObject(req, "edited", edit ? edit : cJSON_CreateNull());
        edit = NULL;
        cJSON_AddItemToObject(doc, "request", req);
        cJSON_AddItemToObject(doc, "attempts", atts);
        *status = 200;
        return doc;
    }
    cJSON_Delete(req);
    cJSON_Delete(edit);
    cJSON_Delete(atts);
    return NULL;
}

/* ---- stats ------------------------------------------------------------------------- */

static const char *const counters[] = {"received", "delivered", "failed",
                                       "retried",  "orphaned",  "purged"};
#define NCOUNTERS 6

/* Per webhook: the rollup totals (which outlive the purge), the live queue
 * (pending and sending rows, through their partial indexes) and every
 * configured webhook, zeros included. */
static const char stats_webhooks_sql[] =
    "SELECT w, sum(received), sum(delivered), sum(failed), sum(retried), sum(orphaned), "
    "sum(purged), sum(queued) FROM ("
    " SELECT webhook AS w, received, delivered, failed, retried, orphaned, purged, 0 AS queued"
    " FROM rollups"
    " UNION ALL SELECT webhook, 0, 0, 0, 0, 0, 0, count(*) FROM requests"
    " WHERE state = 'pending' GROUP BY webhook"
    " UNION ALL SELECT webhook, 0, 0, 0, 0, 0, 0, count(*) FROM requests"
    " WHERE state = 'sending' GROUP BY webhook"
    " UNION ALL SELECT id, 0, 0, 0, 0, 0, 0, 0 FROM webhooks"
    ") GROUP BY w ORDER BY w";

static int stats_webhooks(struct store_reader *rd, cJSON *doc, long long tot[NCOUNTERS + 1])
{
    sqlite3_stmt *s;
    if (prepare(rd, stats_webhooks_sql, &s))
        return -1;
    cJSON *arr = cJSON_AddArrayToObject(doc, "webhooks");
    int rc = SQLITE_DONE, bad = !arr;
    while (!bad && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        bad = !o || add_text_col(o, "webhook", s, 0);
        for (int i = 0; !bad && i <= NCOUNTERS; i++) {
            long long v = sqlite3_column_int64(s, i + 1);
            tot[i] += v;
            bad = !cJSON_AddNumberToObject(o, i < NCOUNTERS ? counters[i] : "pending", (double)v);
        }
        if (o)
            cJSON_AddItemToArray(arr, o);
    }
    if (!bad && rc != SQLITE_DONE)
        bad = read_fail(rd, "store.read_stats", rc);
    sqlite3_finalize(s);
    return bad ? -1 : 0;
}

/* The last STATS_DAYS UTC days, oldest first, zeros where nothing happened. */
static int stats_days(struct store_reader *rd, cJSON *doc, long long now)
{
    long long today = now / DAY_MS, first = today - (STATS_DAYS - 1);
    long long v[STATS_DAYS][NCOUNTERS - 1];
    memset(v, 0, sizeof v);
    sqlite3_stmt *s;
    if (prepare(rd,
                "SELECT day, sum(received), sum(delivered), sum(failed), sum(retried), "
                "sum(orphaned) FROM rollups WHERE day BETWEEN ?1 AND ?2 GROUP BY day",
                &s))
        return -1;
    sqlite3_bind_int64(s, 1, first);
    sqlite3_bind_int64(s, 2, today);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        long long d = sqlite3_column_int64(s, 0) - first;
        for (int i = 0; d >= 0 && d < STATS_DAYS && i < NCOUNTERS - 1; i++)
            v[d][i] = sqlite3_column_int64(s, i + 1);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return read_fail(rd, "store.read_stats_days", rc);
    cJSON *arr = cJSON_AddArrayToObject(doc, "days");
    for (int d = 0; arr && d < STATS_DAYS; d++) {
        time_t t = (time_t)((first + d) * (DAY_MS / 1000));
        struct tm tm;
        char day[16];
        gmtime_r(&t, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "day", day)) {
            cJSON_Delete(o);
            return -1;
        }
        for (int i = 0; i < NCOUNTERS - 1; i++)
            cJSON_AddNumberToObject(o, counters[i], (double)v[d][i]);
        cJSON_AddItemToArray(arr, o);
    }
    return arr ? 0 : -1;
}

/* The received_at of the oldest request not yet finished, or -1 if none. */
static int stats_oldest(struct store_reader *rd, long long *oldest)
{
    sqlite3_stmt *s;
    if (prepare(rd,
                "SELECT min(m) FROM (SELECT min(received_at) AS m FROM requests "
                "WHERE state = 'pending' UNION ALL SELECT min(received_at) FROM requests "
                "WHERE state = 'sending')",
                &s))
        return -1;
    int rc = sqlite3_step(s);
    *oldest = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL
                  ? sqlite3_column_int64(s, 0)
                  : -1;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : read_fail(rd, "store.read_stats_oldest", rc);
}

cJSON *store_read_stats(struct store_reader *rd)
{
    int rc = sqlite3_exec(rd->db, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        read_fail(rd, "store.read_begin", rc);
        return NULL;
    }
    long long now = time_now_ms(), tot[NCOUNTERS + 1] = {0}, oldest = -1;
    cJSON *doc = cJSON_CreateObject();
    cJSON *totals = cJSON_AddObjectToObject(doc, "totals");
    int bad = !totals || stats_webhooks(rd, doc, tot) || stats_days(rd, doc, now) ||
              stats_oldest(rd, &oldest);
    sqlite3_exec(rd->db, "COMMIT", NULL, NULL, NULL);
    for (int i = 0; !bad && i < NCOUNTERS; i++)
        bad = !cJSON_AddNumberToObject(totals, counters[i], (double)tot[i]);
    if (!bad)
        bad = !cJSON_AddNumberToObject(doc, "pending", (double)tot[NCOUNTERS]);
    if (!bad)
        bad = !(oldest >= 0 ? cJSON_AddNumberToObject(doc, "oldest_pending_age_ms",
                                                      (double)(now > oldest ? now - oldest : 0))
                            : cJSON_AddNullToObject(doc, "oldest_pending_age_ms"));
    if (bad) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}
