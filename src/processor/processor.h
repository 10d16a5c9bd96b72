/* processor: delivers stored requests (DESIGN.md "Delivery state machine").
 *
 * Claims due requests through the store (woken at once when ingest commits,
 * and by a timer for the next due retry), sends each with libcurl's multi
 * interface on the loop, records every attempt and its outcome, and sends
 * alert / resolved notices from the store's alert outbox (SMTP and/or HTTP
 * POST). At most cfg->max_deliveries are in flight, and at most each
 * webhook's max_concurrency for one webhook; a million pending rows are never
 * loaded at once (claims are bounded by free slots). */
#ifndef SOLDR_PROCESSOR_H
#define SOLDR_PROCESSOR_H

#include <uv.h>

#include "common/config.h"
#include "store/store.h"

struct proc;

/* Starts delivering. The store must be started; cfg and st outlive the
 * processor. Requests left 'sending' by a crash must have been recovered
 * (store_recover_interrupted) before. */
SOLDR_MUST_USE int proc_start(struct proc **out, uv_loop_t *loop, const struct soldr_config *cfg,
                              struct store *st);
/* Stops claiming, lets deliveries in flight finish for up to
 * cfg->shutdown_grace_ms (their outcomes recorded), abandons the rest (they
 * stay 'sending' and are retried after the restart, recorded as
 * interrupted); alert notices being sent get 1 s (unsent ones stay in the
 * outbox for the next start); then frees everything and calls done(arg). */
void proc_stop(struct proc *p, void (*done)(void *arg), void *arg);

#endif
