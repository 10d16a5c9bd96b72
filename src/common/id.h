/* Request ids: UUIDv7 (RFC 9562) strings, 36 characters, lower-case hex.
 * Time-ordered (48-bit unix ms) and unique: within one millisecond a 12-bit
 * counter in rand_a keeps them strictly increasing (method 1 of RFC 9562
 * §6.2); 62 random bits follow. A generator is used by one thread only. */
#ifndef SOLDR_ID_H
#define SOLDR_ID_H

#include <stddef.h>
#include <stdint.h>

#define SOLDR_ID_LEN 36

struct id_gen {
    uint64_t last_ms;
    uint32_t counter;
    unsigned char pool[256]; /* random bytes from getrandom(), refilled as used */
    size_t pool_used;
};

void id_gen_init(struct id_gen *g);
/* Writes a new id and its terminating NUL into out. now_ms is the wall clock;
 * if it goes backwards the last timestamp is kept, so ids stay increasing. */
void id_new(struct id_gen *g, uint64_t now_ms, char out[SOLDR_ID_LEN + 1]);
/* 1 if s[0..n) is a well-formed lower-case UUID string, else 0. */
int id_valid(const char *s, size_t n);
/* The unix ms timestamp of a UUIDv7 string (which must be valid). */
uint64_t id_time_ms(const char *s);

#endif
