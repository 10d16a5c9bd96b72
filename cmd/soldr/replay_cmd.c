/* soldr replay [FILE|-]: restores the request records that `soldr serve`
 * wrote to stdout when a commit failed.
 *
 * Input may be raw stdout or `journalctl -o cat` output with other lines
 * mixed in: a record is a line holding `"soldr.request"`, starting at the
 * first `{` of the line (any JSON spacing; the parser checks the type). journald splits lines
 * longer than its LineMax (48 KiB by default) into several entries; a record that does not parse is
 * joined with the following lines (up to 64 MiB, until one of them starts a new record) and parsed
 * again, so big bodies survive the journal. Inserts use INSERT OR IGNORE semantics on the id:
 * replaying twice is safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common/log.h"

#define RECORD_MARK   "\"soldr.request\""
#define JOIN_MAX      (64u << 20)
#define BATCH_RECORDS 500

struct replay {
    struct store *st;
    FILE *in;
    char *line; /* getline's buffer */
    size_t line_cap;
    int have_line; /* `line` holds a line read ahead and not yet used */
    long restored, present, malformed;
    int in_batch, batch_n;
};

static ssize_t next_line(struct replay *r)
{
    if (r->have_line) {
        r->have_line = 0;
        return (ssize_t)strlen(r->line);
    }
    ssize_t n = getline(&r->line, &r->line_cap, r->in);
    if (n > 0 && r->line[n - 1] == '\n')
        r->line[--n] = '\0';
    if (n > 0 && r->line[n - 1] == '\r')
        r->line[--n] = '\0';
    return n;
}

static int insert(struct replay *r, const struct soldr_request *req)
{
    int rc;
    if (!r->in_batch) {
        if ((rc = store_begin(r->st)))
            return rc;
        r->in_batch = 1;
    }
    rc = store_replay_insert(r->st, req);
    if (rc < 0)
        return rc;
    if (rc == 1)
        r->restored++;
    else
        r->present++;
    if (++r->batch_n >= BATCH_RECORDS) {
        r->in_batch = r->batch_n = 0;
        return store_commit(r->st);
    }
    return 0;
}

/* Parses the record starting in the current line, joining continuation lines
 * if needed. Returns 0 (inserted or counted), or < 0 on a database error. */
static int one_record(struct replay *r, const char *start)
{
    struct buf text;
    buf_init(&text, JOIN_MAX);
    int rc = buf_appends(&text, start);
    struct soldr_request req;
    for (;;) {
        req_init(&req, (size_t)-1);
        int prc = rc ? rc : req_from_json(&req, text.data, text.len);
        if (prc == 0) {
            rc = insert(r, &req);
            break;
        }
        req_free(&req);
        ssize_t n = prc == SOLDR_EMALFORMED ? next_line(r) : -1;
        if (n < 0 || strstr(r->line, RECORD_MARK) || buf_append(&text, r->line, (size_t)n)) {
            if (n >= 0)
                r->have_line = 1; /* not a continuation: process it on its own */
            r->malformed++;
            log_warn("replay.malformed", "a soldr.request record could not be parsed (%zu bytes)",
                     text.len);
            rc = 0;
            req_init(&req, 0);
            break;
        }
    }
    req_free(&req);
    buf_free(&text);
    return rc;
}

int cmd_replay(const struct soldr_config *cfg, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("Usage: soldr replay [FILE|-] [settings]\n"
               "Restores request records that soldr serve wrote to stdout when the database\n"
               "failed. Reads FILE, or standard input when FILE is '-' or absent; raw stdout\n"
               "or `journalctl -u soldr -o cat` output (other lines are skipped). Requests\n"
               "already in the database are left alone, so replaying twice is safe. Prints\n"
               "'restored N, already present M, malformed K'; exits 1 if K > 0.\n\n");
        config_print_help(stdout, CFG_DB);
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "soldr replay: unexpected argument '%s'\n", argv[2]);
        return 2;
    }
    struct replay r;
    memset(&r, 0, sizeof r);
    const char *path = argc > 1 ? argv[1] : "-";
    r.in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!r.in) {
        perror(path);
        return 2;
    }
    if (cmd_open_store(cfg, &r.st, -1)) {
        if (r.in != stdin)
            fclose(r.in);
        return 2;
    }
    int rc = 0;
    while (rc == 0 && next_line(&r) >= 0) {
        char *mark = strstr(r.line, RECORD_MARK);
        char *start = mark ? memchr(r.line, '{', (size_t)(mark - r.line)) : NULL;
        if (start)
            rc = one_record(&r, start);
    }
    if (rc == 0 && r.in_batch)
        rc = store_commit(r.st);
    else if (rc && r.in_batch && store_commit(r.st) == 0)
        log_info("replay.partial", "kept the records restored before the error");
    store_close(r.st);
    free(r.line);
    if (r.in != stdin)
        fclose(r.in);
    printf("restored %ld, already present %ld, malformed %ld\n", r.restored, r.present,
           r.malformed);
    if (rc) {
        fprintf(stderr, "soldr replay: database error: %s\n", soldr_strerror(rc));
        return 2;
    }
    return r.malformed ? 1 : 0;
}
