/* purge: the retention task. Every SOLDR_PURGE_INTERVAL it deletes attempts,
 * then requests, older than SOLDR_RETENTION_DAYS, in chunks of
 * SOLDR_PURGE_CHUNK rows, each chunk its own short transaction on the
 * store's writer thread. The next chunk is queued only when the previous
 * one has committed, so ingest commits queued meanwhile go first: a purge of
 * millions of rows never makes ingest wait for more than one chunk. Rollup
 * counters are never deleted. */
#ifndef SOLDR_PURGE_H
#define SOLDR_PURGE_H

#include <uv.h>

#include "common/config.h"
#include "store/store.h"

struct purge;

/* Starts the timer (first pass 1 s after start, then every interval). */
SOLDR_MUST_USE int purge_start(struct purge **out, uv_loop_t *loop, const struct soldr_config *cfg,
                               struct store *st);
/* Stops after the chunk in flight (if any); frees; calls done(arg). */
void purge_stop(struct purge *p, void (*done)(void *arg), void *arg);

#endif
