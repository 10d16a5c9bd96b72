/* Requests for the management API: filters, edits, resends. The write
 * functions are synchronous and meant to run on the writer thread through
 * store_call (mgmt), or from the CLI; reads take a store_reader (access.h). */
#ifndef SOLDR_STORE_REQUESTS_API_H
#define SOLDR_STORE_REQUESTS_API_H

#include <cjson/cJSON.h>

#include "store/access.h"

/* A filter over requests; zero/NULL members are unset. */
struct store_filter {
    const char *webhook;
    const char *state;  /* pending, sending, delivered, failed, orphaned */
    long long from, to; /* received_at: from inclusive, to exclusive; 0 = unset */
    int status;         /* last_status; 0 = unset */
    const char *q;      /* substring of the target */
};

/* The version of a request that is delivered: its edit if any, else the
 * original (method, target, headers, body into an initialised r).
 * SOLDR_ENOTFOUND if no such id. */
SOLDR_MUST_USE int store_request_current(struct store *st, const char *id, struct soldr_request *r);
/* Stores r (method, target, headers, body) as the edited version of request
 * id, replacing an earlier edit; the original stays untouched. From then on
 * deliveries send the edit. 0 or SOLDR_ENOTFOUND. */
SOLDR_MUST_USE int store_request_edit(struct store *st, const char *id,
                                      const struct soldr_request *r);
/* Delivers request id again now: state -> pending, due now, the next attempt
 * marked manual. SOLDR_ENOTFOUND, or SOLDR_EBUSY while it is 'sending' (a
 * delivery is in flight: resending now could overlap it). */
SOLDR_MUST_USE int store_request_resend(struct store *st, const char *id);
/* The same for every request the filter matches (except those 'sending');
 * returns how many, or an error. */
SOLDR_MUST_USE long long store_requests_resend(struct store *st, const struct store_filter *f);

/* ---- reads (any thread, on a reader) -------------------------------------- */

/* {"requests": [summary...], "next_cursor": "..."|null}, newest first, keyset
 * on id (API.md). limit 1..500; cursor NULL for the first page. */
cJSON *store_read_requests(struct store_reader *rd, const struct store_filter *f, int limit,
                           const char *cursor);
/* {"request": detail, "attempts": [...]} or NULL with *status 404/503. */
cJSON *store_read_request(struct store_reader *rd, const char *id, int *status);
/* The /api/v1/stats document (API.md). */
cJSON *store_read_stats(struct store_reader *rd);

#endif
