/* Store access for other threads than the loop that owns the store (mgmt):
 *  - store_call runs a synchronous store function on the writer thread, in
 *    the next group commit, under a savepoint of its own: a function that
 *    fails (SOLDR_EEXIST, SOLDR_ENOTFOUND, ...) undoes only its own changes.
 *  - readers are read-only connections for SELECTs on any thread (WAL lets
 *    them run beside the writer without blocking it). */
#ifndef SOLDR_STORE_ACCESS_H
#define SOLDR_STORE_ACCESS_H

#include "store/store.h"

/* fn runs on the writer thread and may call the synchronous store functions
 * (store_webhook_insert, ...). done(arg, rc) then runs on the store's loop
 * with fn's return value (or SOLDR_ESTORE if the batch did not commit).
 * Callable from any thread. */
typedef int (*store_fn)(struct store *st, void *arg);
SOLDR_MUST_USE int store_call(struct store *st, store_fn fn, void *arg,
                              void (*done)(void *arg, int rc));

struct store_reader;
/* Takes a read-only connection from the store's pool (opening one if none is
 * free). Thread-safe. NULL on error (logged). */
struct store_reader *store_reader_get(struct store *st);
/* Gives it back. */
void store_reader_put(struct store *st, struct store_reader *r);
/* Webhook reads on a reader: like store_webhook_get / store_webhook_list. */
SOLDR_MUST_USE int store_read_webhook(struct store_reader *r, const char *id,
                                      struct soldr_webhook *out);
SOLDR_MUST_USE int store_read_webhooks(struct store_reader *r,
                                       int (*each)(void *arg, const struct soldr_webhook *wh),
                                       void *arg);
/* Closes the pool (no reader may be out). */
void store_readers_close(struct store *st);

#endif
