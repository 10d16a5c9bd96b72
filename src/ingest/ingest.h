/* ingest: the public HTTP endpoint. Maps Host "<label>.<domain>" to a
 * webhook label, gives the request a UUIDv7 id, hands it to the store, and
 * answers only once the store says it is durable (the ack rule):
 *   committed or logged to stdout -> 200 {"id":"..."}
 *   neither, or the queue is full -> 503 with Retry-After
 *   host outside the domain      -> 404, not stored
 *   no Host / several Host       -> 400, not stored
 * No lookup of the webhook happens here: unknown labels are stored too and
 * the processor marks them orphaned. */
#ifndef SOLDR_INGEST_H
#define SOLDR_INGEST_H

#include <uv.h>

#include "common/config.h"
#include "common/errors.h"
#include "store/store.h"

struct ingest;

/* Starts listening: on listen_fd if it is >= 0 (a listening TCP socket
 * passed by the service manager, owned by the ingest from then on), else on
 * cfg->listen. cfg and st must outlive the ingest. On failure (logged) *out
 * is still set and must be stopped with ingest_stop. */
SOLDR_MUST_USE int ingest_start(struct ingest **out, uv_loop_t *loop,
                                const struct soldr_config *cfg, struct store *st, int listen_fd);
/* Stops accepting, answers every request already received (after its
 * commit), then frees the ingest and calls done(arg) on the loop. */
void ingest_stop(struct ingest *in, void (*done)(void *arg), void *arg);

#endif
