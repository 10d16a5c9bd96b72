/* soldr's own error codes. Functions return 0 on success and a negative code
 * on failure: either a libuv UV_E* code (passed through) or one of these.
 * SQLite and curl codes never leave their modules. */
#ifndef SOLDR_ERRORS_H
#define SOLDR_ERRORS_H

#define SOLDR_MUST_USE __attribute__((warn_unused_result))

enum {
    SOLDR_ETOOBIG = -20001,    /* a capped buffer or limit was exceeded */
    SOLDR_ESTORE = -20002,     /* the database failed (details are logged where it happened) */
    SOLDR_ESCHEMA = -20003,    /* the database schema is newer than this binary */
    SOLDR_ECONFIG = -20004,    /* invalid configuration value */
    SOLDR_ENOTFOUND = -20005,  /* no such row */
    SOLDR_EEXIST = -20006,     /* the row exists already */
    SOLDR_EMALFORMED = -20007, /* input could not be parsed */
    SOLDR_EBUSY = -20008,      /* too much queued work: try again later */
    SOLDR_EFALLBACK = -20009,  /* neither committed nor written to the fallback log */
    SOLDR_ESTOPPED = -20010,   /* the component is shutting down */
};

/* Returns a static description of a SOLDR_E* or UV_E* code. */
const char *soldr_strerror(int err);

#endif
