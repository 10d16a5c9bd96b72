/* A growable byte buffer with a hard cap (curl's dynbuf). Appending past the
 * cap fails with SOLDR_ETOOBIG and leaves the buffer unchanged; the caller
 * turns that into 413/431. The data is always NUL-terminated (not counted in
 * len) so text can be used as a C string. */
#ifndef SOLDR_BUF_H
#define SOLDR_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/errors.h"

struct buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
};

void buf_init(struct buf *b, size_t max);
/* 0, SOLDR_ETOOBIG if len + n would exceed max, UV_ENOMEM. */
SOLDR_MUST_USE int buf_append(struct buf *b, const void *p, size_t n);
SOLDR_MUST_USE int buf_appends(struct buf *b, const char *s);
SOLDR_MUST_USE int buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
SOLDR_MUST_USE int buf_vappendf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Frees the memory; the buffer can be reused after buf_init. */
void buf_free(struct buf *b);
/* Hands the memory to the caller (who frees it) and empties the buffer. */
char *buf_steal(struct buf *b, size_t *len);

#endif
