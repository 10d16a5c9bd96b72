/* Shared fixture of the store unit tests (test_store.c, test_writer.c): a
 * fresh database in its own mkdtemp directory, a fallback pipe, and helpers
 * to build, compare and look up requests. */
#ifndef SOLDR_TEST_STORE_FIXTURE_H
#define SOLDR_TEST_STORE_FIXTURE_H

#include <limits.h>
#include <sqlite3.h>

#include "common/id.h"
#include "common/request.h"
#include "store/store.h"

#define MAX_REQ (1u << 20)

struct fx {
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
    struct store_opts opts;
    int fallback[2]; /* pipe: the store writes to [1], tests read [0] */
    struct id_gen ids;
};

int setup(void **state);
int teardown(void **state);
struct store *open_store(struct fx *f);
char *drain_fallback(struct fx *f, size_t *len);
long long sql_int(const char *path, const char *sql);
void sql_exec(sqlite3 *db, const char *sql);
void make_request(struct fx *f, struct soldr_request *r, int i);
void assert_span_equal(const struct soldr_request *a, struct span sa, const struct soldr_request *b,
                       struct span sb, const char *what);
void assert_req_equal(const struct soldr_request *a, const struct soldr_request *b);
void assert_stored(struct store *st, const struct soldr_request *want);
void assert_not_stored(struct store *st, const char *id);

#endif
