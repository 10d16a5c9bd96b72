/* Shared by the fuzz targets (test/fuzz/README.md): a temporary data
 * directory with a store in it, a loopback client driven by the same libuv
 * loop as the server under test, and a checker for the stream of HTTP
 * answers a server sends back.
 *
 * A broken invariant is reported with FUZZ_FAIL, which prints the reason and
 * aborts: libFuzzer then saves the input as a crash artifact. */
#ifndef SOLDR_FUZZ_COMMON_H
#define SOLDR_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "common/buf.h"
#include "store/store.h"

#define FUZZ_FAIL(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "fuzz invariant broken (%s:%d): ", __FILE__, __LINE__);                    \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        fuzz_dirs_remove_all();                                                                    \
        abort();                                                                                   \
    } while (0)
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FUZZ_FAIL(__VA_ARGS__);                                                                \
    } while (0)

/* ---- environment ------------------------------------------------------------- */

/* 1 if SOLDR_FUZZ_VERBOSE is set: the targets then print what they see
 * (answers), to check what a seed reaches. */
int fuzz_verbose(void);
/* Once per process: logs at error level only, SIGPIPE ignored. */
void fuzz_process_init(void);

/* A fresh directory (under /dev/shm when writable, so SQLite never waits on
 * a disk; else $TMPDIR or /tmp) holding db = <dir>/soldr.db. */
struct fuzz_dir {
    char path[256];
    char db[300];
};
void fuzz_dir_make(struct fuzz_dir *d, const char *tag);
/* Removes the directory and the files in it. */
void fuzz_dir_remove(struct fuzz_dir *d);
/* Removes every directory fuzz_dir_make made and fuzz_dir_remove did not
 * (FUZZ_FAIL calls it before aborting; atexit handlers do not run then). */
void fuzz_dirs_remove_all(void);

/* Opens (and migrates) a store on d->db, durability NORMAL, fallback records
 * to /dev/null. Aborts on failure: the harness is broken, not soldr. */
struct store *fuzz_store_open(const struct fuzz_dir *d);

/* Number of handles on the loop, closing ones included. */
int fuzz_loop_handles(uv_loop_t *loop);
/* Runs the loop until it has no handle left, then checks uv_loop_close() is
 * 0 (a leaked handle is a finding). */
void fuzz_loop_finish(uv_loop_t *loop);

/* ---- a loopback client ------------------------------------------------------- */

struct fuzz_exchange {
    struct buf answers; /* every byte the server sent, max 16 MiB */
    int reset;          /* the server reset the connection (or refused our bytes) */
    double ms;          /* from connect to the server's close */
};
/* Connects to 127.0.0.1:port, writes data (in one write, or in small pieces
 * the server reads one by one: see fuzz_split), half-closes, and reads until the server closes;
 * then runs the loop until it holds `baseline` handles again (everything the server opened for the
 * connection is closed). Fails if the server takes longer than timeout_ms after our half-close. */
enum fuzz_split {
    FUZZ_SPLIT_HASH,  /* pieces for half of the inputs, by a hash of the bytes */
    FUZZ_SPLIT_NONE,  /* one write */
    FUZZ_SPLIT_PIECES /* pieces (sizes from the hash) */
};
void fuzz_exchange(uv_loop_t *loop, int port, const uint8_t *data, size_t len, int baseline,
                   uint64_t timeout_ms, enum fuzz_split split, struct fuzz_exchange *x);
void fuzz_exchange_free(struct fuzz_exchange *x);

/* ---- the answer stream -------------------------------------------------------- */

struct fuzz_answer {
    int status;
    const char *head; /* status line and header section, "\r\n\r\n" included */
    size_t head_len;
    const char *body;
    size_t body_len;
    int close; /* "Connection: close" */
};
/* Splits answers into HTTP/1.1 answers and checks their framing: status line
 * "HTTP/1.1 NNN Reason", exactly one Content-Length (interim 1xx have none and
 * no body), a complete body, nothing after a "Connection: close" answer. A
 * cut last answer is accepted only when `cut_ok` (the connection was reset).
 * Calls each() for every final (non-1xx) answer; returns their number. */
size_t fuzz_answers(const struct buf *answers, int cut_ok,
                    void (*each)(void *arg, const struct fuzz_answer *a), void *arg);
/* The value of header `name` (case-insensitive) in an answer's head, or NULL;
 * *len gets its length. */
const char *fuzz_answer_header(const struct fuzz_answer *a, const char *name, size_t *len);

#endif
