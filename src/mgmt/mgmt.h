/* mgmt: the management API and UI over HTTPS (src/mgmt/API.md).
 *
 * Runs on a thread and libuv loop of its own, so TLS handshakes, slow or
 * hostile clients and JSON work never delay ingest or deliveries on the main
 * loop. Reads use the store's read-only connections on libuv's thread pool;
 * writes go through the store's writer thread (store_call) like everything
 * else, and their results come back to the mgmt loop through an async handle.
 *
 * Without a secret (SOLDR_MGMT_SECRET_FILE or SOLDR_MGMT_SECRET, 32+
 * characters) the port does not start, and the log says why. */
#ifndef SOLDR_MGMT_H
#define SOLDR_MGMT_H

#include <uv.h>

#include "common/config.h"
#include "store/store.h"

struct mgmt;

/* Loads the secret and the certificate (generating a self-signed pair in the
 * data dir on first start and logging its SHA-256 fingerprint), binds
 * cfg->mgmt_listen (or uses listen_fd >= 0, a socket passed by systemd) and
 * starts the mgmt thread. *out is NULL (and 0 returned) when no secret is
 * configured. Errors (bad secret file, bad cert) are logged and returned. */
SOLDR_MUST_USE int mgmt_start(struct mgmt **out, uv_loop_t *main_loop,
                              const struct soldr_config *cfg, struct store *st, int listen_fd);
/* Stops accepting, finishes the API calls in flight (their store writes
 * included), joins the thread, then calls done(arg) on main_loop. */
void mgmt_stop(struct mgmt *m, void (*done)(void *arg), void *arg);

/* The UI file at path ("/" means "/index.html") from dir, or from the copy
 * built into the binary when dir is empty: 1 and *data (malloc'd, the
 * caller frees), *len, *ctype; 0 if there is none or the path is unsafe
 * ("..", characters outside [A-Za-z0-9._/-]). Used by `soldr ui` too. */
int mgmt_ui_file(const char *dir, const char *path, char **data, size_t *len, const char **ctype);
/* Security headers sent with every UI file. */
extern const char mgmt_ui_headers[];

#endif
