/* The store's side of retention (see src/purge/purge.h for the task). */
#ifndef SOLDR_STORE_PURGE_H
#define SOLDR_STORE_PURGE_H

#include "store/store.h"

struct store_purge_counts {
    long long attempts;    /* attempt rows deleted (or, dry run, to delete) */
    long long requests;    /* requests deleted, with their bodies and attempts */
    long long undelivered; /* of those, still pending or sending */
};

/* One chunk, in its own short transaction on the writer thread: deletes at
 * most `limit` attempts started before cutoff_ms, then, if none were left,
 * at most `limit` requests received before it (their bodies and attempts go
 * with them), and counts the requests in the rollups' purged columns.
 * Chunks walk the primary keys from the oldest row and look at `limit` rows
 * at most, so a chunk never scans the table; a row stored out of order (a
 * replayed old request) is purged once the rows before it are gone. cb gets
 * the counts of this chunk; both zero means the pass is complete. */
typedef void (*store_purge_cb)(void *arg, int status, const struct store_purge_counts *c);
SOLDR_MUST_USE int store_purge_chunk(struct store *st, long long cutoff_ms, int limit,
                                     store_purge_cb cb, void *arg);

/* Synchronous (CLI): a whole pass in chunks, or, with dry_run, only counts
 * what a pass would delete now. */
SOLDR_MUST_USE int store_purge_now(struct store *st, long long cutoff_ms, int limit, int dry_run,
                                   struct store_purge_counts *out);

/* Synchronous (CLI): calls each() for every rollup row, by webhook then day. */
struct store_rollup_row {
    const char *webhook;
    long long day; /* unix ms / 86400000 */
    long long received, delivered, failed, retried, orphaned, purged, purged_undelivered;
};
SOLDR_MUST_USE int store_rollups(struct store *st,
                                 int (*each)(void *arg, const struct store_rollup_row *r),
                                 void *arg);

#endif
