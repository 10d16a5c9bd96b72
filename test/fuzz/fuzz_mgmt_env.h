/* The mgmt API without TLS for the fuzz targets: a struct mgmt assembled by
 * hand from mgmt_int.h (what mgmt_start does, less the secret file, the
 * certificate and the thread), on a store with seed rows, everything on the
 * mgmt's own loop in the calling thread. With `listen`, a plaintext httpd on
 * 127.0.0.1 serves it (on_request_cb, the real router); without, the caller
 * feeds on_request_cb itself.
 *
 * mgmt_start always wraps the port in TLS, which makes byte fuzzing of the
 * HTTP layer useless; a test hook in src/mgmt that starts the same server
 * with tls = NULL would let this file shrink to a call (README.md). */
#ifndef SOLDR_FUZZ_MGMT_ENV_H
#define SOLDR_FUZZ_MGMT_ENV_H

#include "fuzz_common.h"
#include "mgmt/mgmt_int.h"

#define FUZZ_SECRET  "fuzz-secret-0123456789abcdef-0123456789" /* make_corpus.py SECRET */
#define FUZZ_REQ_ID  "01890a5d-ac96-774b-bcce-b302099a8057"    /* make_corpus.py REQ_ID */
#define FUZZ_REQ_ID2 "01890a5d-ac96-774b-bcce-b302099a8058"
#define FUZZ_WEBHOOK "seed" /* and "other" */

struct fuzz_mgmt {
    int up;
    struct fuzz_dir dir;
    struct soldr_config cfg;
    struct store *st;
    struct mgmt *m;
    uv_loop_t *loop; /* &m->loop */
    int port;        /* with listen */
    int baseline;    /* handles on the loop when idle */
};

void fuzz_mgmt_up(struct fuzz_mgmt *e, int listen);
/* Stops everything and checks the loop closes without a leaked handle. */
void fuzz_mgmt_down(struct fuzz_mgmt *e);

#endif
