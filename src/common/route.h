/* Routing: which webhook a Host header belongs to. */
#ifndef SOLDR_ROUTE_H
#define SOLDR_ROUTE_H

#include <stddef.h>

#define SOLDR_LABEL_MAX 63

/* If host (not NUL-terminated, any case, optional ":port") is
 * "<label>.<domain>" with label matching [a-z0-9-]{1,63}, writes the
 * lower-cased label to out and returns its length; otherwise returns 0.
 * domain must be lower-case. A trailing dot on host is accepted. */
size_t route_label(const char *host, size_t host_len, const char *domain,
                   char out[SOLDR_LABEL_MAX + 1]);
/* 1 if s is a valid webhook label ([a-z0-9-]{1,63}), else 0. */
int route_label_valid(const char *s);

#endif
