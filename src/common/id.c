#include "common/id.h"

#include <string.h>
#include <sys/random.h>

static void pool_fill(struct id_gen *g)
{
    size_t got = 0;
    while (got < sizeof g->pool) {
        ssize_t n = getrandom(g->pool + got, sizeof g->pool - got, 0);
        if (n <= 0)
            break; /* never fails for <= 256 bytes once the pool is seeded */
        got += (size_t)n;
    }
    g->pool_used = 0;
}

static void take_random(struct id_gen *g, unsigned char *out, size_t n)
{
    if (g->pool_used + n > sizeof g->pool)
        pool_fill(g);
    memcpy(out, g->pool + g->pool_used, n);
    g->pool_used += n;
}

void id_gen_init(struct id_gen *g)
{
    memset(g, 0, sizeof *g);
    pool_fill(g);
}

void id_new(struct id_gen *g, uint64_t now_ms, char out[SOLDR_ID_LEN + 1])
{
    unsigned char b[16];
    if (now_ms > g->last_ms) {
        unsigned char r[2];
        take_random(g, r, 2);
        g->last_ms = now_ms;
        g->counter = ((uint32_t)r[0] << 8 | r[1]) & 0x7ff; /* leave room to count up */
    } else if (++g->counter > 0xfff) {
        g->last_ms++; /* counter exhausted: borrow the next millisecond */
        g->counter = 0;
    }
    uint64_t ms = g->last_ms;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (g->counter >> 8));
    b[7] = (unsigned char)(g->counter & 0xff);
    take_random(g, b + 8, 8);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));

    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

int id_valid(const char *s, size_t n)
{
    if (n != SOLDR_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

uint64_t id_time_ms(const char *s)
{
    uint64_t ms = 0;
    for (int i = 0; i < 13; i++) {
        if (s[i] == '-')
            continue;
        char c = s[i];
        ms = ms << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return ms;
}
