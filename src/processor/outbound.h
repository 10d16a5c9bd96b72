/* outbound: the pure rules of a delivery, kept apart so they are unit-tested
 * on their own: the URL, which headers go along, the signature, the backoff. */
#ifndef SOLDR_OUTBOUND_H
#define SOLDR_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The delivery URL: the destination joined with the request target.
 *   path  = destination path without its trailing '/' + target path
 *           (a target path of just "/" adds nothing; an empty result is "/")
 *   query = destination query, then target query, joined with '&'
 *   https://d.example/hook?k=1  +  /a/b?x=2  ->  https://d.example/hook/a/b?k=1&x=2
 * A fragment in the destination is dropped. Appends to out. */
int outbound_url(const char *dest, const char *target, size_t target_len, struct buf *out);

/* 1 if a received header goes along to the destination: everything except
 * Host, Content-Length, hop-by-hop headers (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade), Expect, and
 * webhook-* (soldr sets those itself). Case-insensitive. */
int outbound_forward_header(const char *name, size_t len);

/* Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key, id "." ts "." body))
 * where the secret is "whsec_" + base64(key) (a secret without the prefix,
 * or that is not base64, is used as raw key bytes). out gets a NUL-terminated
 * string; returns 0 or SOLDR_ETOOBIG if cap is too small (use 64+). */
int outbound_sign(const char *secret, const char *id, long long ts, const void *body, size_t len,
                  char *out, size_t cap);

/* Retry delay after failed attempt n (1-based), "equal jitter":
 * d = min(cap, base * 2^(n-1)); delay = d/2 + rnd % (d/2 + 1). Delays never
 * shrink from one attempt to the next until the cap, and never collapse to 0. */
uint64_t outbound_backoff_ms(uint32_t n, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd);

/* Parses a Retry-After value (delta seconds or an HTTP date) into seconds
 * from now_s; -1 if absent or invalid. */
long long outbound_retry_after(const char *value, long long now_s);

#endif
