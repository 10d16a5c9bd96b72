/* Unit tests for src/common: buf, route, id, config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/id.h"
#include "common/log.h"
#include "common/route.h"

/* ---- buf -------------------------------------------------------------------- */

static void buf_append_grows_and_terminates(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    /* Many small appends force several reallocations. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    for (size_t i = 0; i < b.len; i += 3)
        assert_memory_equal(b.data + i, "abc", 3);
    assert_int_equal(buf_appends(&b, "xyz"), 0);
    assert_string_equal(b.data + 3000, "xyz");
    /* Binary data with NULs is kept whole; len counts it, the terminator is extra. */
    static const char bin[] = {'\0', 'a', '\0', (char)0xff};
    assert_int_equal(buf_append(&b, bin, sizeof bin), 0);
    assert_int_equal(b.len, 3007);
    assert_memory_equal(b.data + 3003, bin, sizeof bin);
    assert_int_equal(b.data[b.len], '\0');
    /* An empty append is fine and changes nothing. */
    assert_int_equal(buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 3007);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void buf_cap_is_enforced_and_leaves_buffer_unchanged(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, "0123456789", 10), 0); /* exactly max: allowed */
    assert_int_equal(b.len, 10);
    size_t cap = b.cap;
    char *data = b.data;
    assert_int_equal(buf_append(&b, "x", 1), SOLDR_ETOOBIG);
    assert_int_equal(buf_appends(&b, "y"), SOLDR_ETOOBIG);
    assert_int_equal(buf_appendf(&b, "%d", 7), SOLDR_ETOOBIG);
    assert_int_equal(b.len, 10);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "0123456789");

    /* Fails as a whole, not in part: 5 + 6 > 10 appends nothing. */
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_append(&b, "abcde", 5), 0);
    assert_int_equal(buf_append(&b, "fghijk", 6), SOLDR_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "abcde");
    assert_int_equal(buf_appendf(&b, "%s", "123456"), SOLDR_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "abcde");
    /* A huge n must not wrap around the check. */
    assert_int_equal(buf_append(&b, "z", SIZE_MAX), SOLDR_ETOOBIG);
    assert_int_equal(b.len, 5);
    buf_free(&b);

    /* max 0: nothing at all fits. */
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "a", 1), SOLDR_ETOOBIG);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void buf_appendf_formats(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(buf_appendf(&b, "%s=%d;", "a", 42), 0);
    assert_int_equal(buf_appendf(&b, "%05u|%x|%c", 7u, 255u, 'Z'), 0);
    assert_string_equal(b.data, "a=42;00007|ff|Z");
    assert_int_equal(b.len, strlen("a=42;00007|ff|Z"));
    /* A long formatted string (beyond the first allocation) is written whole. */
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(buf_appendf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 15 + 1 + 999 + 1);
    assert_int_equal(b.data[15], '[');
    assert_int_equal(b.data[15 + 1 + 998], 'q');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    /* Exactly at the cap is fine, one more is not. */
    struct buf c;
    buf_init(&c, 5);
    assert_int_equal(buf_appendf(&c, "%d", 12345), 0);
    assert_string_equal(c.data, "12345");
    buf_reset(&c);
    assert_int_equal(buf_appendf(&c, "%d", 123456), SOLDR_ETOOBIG);
    assert_int_equal(c.len, 0);
    buf_free(&c);
    buf_free(&b);
}

static void buf_steal_hands_over_memory(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_appends(&b, "hello"), 0);
    size_t len = 0;
    char *p = buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 5);
    assert_string_equal(p, "hello");
    /* The buffer is empty and usable again, with the same cap. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 100);
    assert_int_equal(buf_appends(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    assert_ptr_not_equal(b.data, p);
    free(p);
    /* len may be NULL. */
    p = buf_steal(&b, NULL);
    assert_string_equal(p, "again");
    free(p);
    /* Stealing an empty buffer gives NULL and length 0. */
    p = buf_steal(&b, &len);
    assert_null(p);
    assert_int_equal(len, 0);
    buf_free(&b);
}

/* ---- route ------------------------------------------------------------------ */

static size_t label_of(const char *host, char out[SOLDR_LABEL_MAX + 1])
{
    memset(out, '#', SOLDR_LABEL_MAX + 1);
    return route_label(host, strlen(host), "wh.localhost", out);
}

static void route_label_matches(void **state)
{
    (void)state;
    char out[SOLDR_LABEL_MAX + 1];
    assert_int_equal(label_of("abc.wh.localhost", out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(label_of("abc-123.wh.localhost:8080", out), 7);
    assert_string_equal(out, "abc-123");
    assert_int_equal(label_of("ABC.WH.LocalHost", out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(label_of("MiXeD-9.Wh.LOCALHOST:443", out), 7);
    assert_string_equal(out, "mixed-9");
    assert_int_equal(label_of("abc.wh.localhost.", out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(label_of("abc.wh.localhost.:8080", out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(label_of("x.wh.localhost", out), 1);
    assert_string_equal(out, "x");
    /* A label may be all digits. */
    assert_int_equal(label_of("12345.wh.localhost:1", out), 5);
    assert_string_equal(out, "12345");

    /* host is not NUL-terminated: only host_len bytes count. */
    const char *h = "abc.wh.localhostGARBAGE";
    assert_int_equal(route_label(h, 16, "wh.localhost", out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(route_label(h, 17, "wh.localhost", out), 0);

    /* Exactly 63 characters is the longest label. */
    char host[128], label[64];
    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(host, sizeof host, "%s.wh.localhost:80", label);
    assert_int_equal(label_of(host, out), 63);
    assert_string_equal(out, label);
}

static void route_label_rejects(void **state)
{
    (void)state;
    char out[SOLDR_LABEL_MAX + 1];
    static const char *const bad[] = {
        "",
        "wh.localhost",       /* host equal to the domain */
        "wh.localhost:8080",  /* same, with a port */
        ".wh.localhost",      /* empty label */
        "..wh.localhost",     /* label "." */
        "a.evilwh.localhost", /* the domain is a suffix, not at a dot */
        "evilwh.localhost",   /* no dot before the domain */
        "a.wh.localhost.evil.com",
        "a.wh.localhostx",
        "a.xwh.localhost",
        "a.b.wh.localhost", /* two labels */
        "a_b.wh.localhost", /* bad character */
        "a b.wh.localhost",
        "a*b.wh.localhost",
        "caf\xc3\xa9.wh.localhost",
        "abc.wh.localhost:80a", /* not a port */
        "abc.wh.localhost..",
        "abc.example.com",
        "localhost",
        "[::1]:8080",
        "abc.wh.localhos",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = label_of(bad[i], out);
        if (n != 0)
            fail_msg("route_label(\"%s\") = %zu (\"%.*s\"), want 0", bad[i], n, (int)n, out);
    }
    /* 64 characters is one too many. */
    char host[128];
    memset(host, 'a', 64);
    snprintf(host + 64, sizeof host - 64, ".wh.localhost");
    assert_int_equal(label_of(host, out), 0);
    /* An empty domain never matches. */
    assert_int_equal(route_label("abc.", 4, "", out), 0);
    assert_int_equal(route_label("abc", 3, "", out), 0);
}

static void route_label_valid_checks(void **state)
{
    (void)state;
    assert_int_equal(route_label_valid("a"), 1);
    assert_int_equal(route_label_valid("abc-123"), 1);
    assert_int_equal(route_label_valid("-"), 1);
    assert_int_equal(route_label_valid("0123456789"), 1);
    char s[80];
    memset(s, 'z', 63);
    s[63] = '\0';
    assert_int_equal(route_label_valid(s), 1);
    s[63] = 'z';
    s[64] = '\0';
    assert_int_equal(route_label_valid(s), 0);
    assert_int_equal(route_label_valid(""), 0);
    assert_int_equal(route_label_valid("Abc"), 0); /* labels are stored lower-case */
    assert_int_equal(route_label_valid("a.b"), 0);
    assert_int_equal(route_label_valid("a_b"), 0);
    assert_int_equal(route_label_valid("a b"), 0);
    assert_int_equal(route_label_valid("a/b"), 0);
    assert_int_equal(route_label_valid("\xc3\xa9"), 0);
}

/* ---- id --------------------------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Asserts that s is a UUIDv7 in canonical lower-case form. */
static void assert_uuidv7(const char *s)
{
    assert_int_equal(strlen(s), SOLDR_ID_LEN);
    for (int i = 0; i < SOLDR_ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else if (hexval(s[i]) < 0)
            fail_msg("id %s: character %d is not lower-case hex", s, i);
    }
    assert_int_equal(s[14], '7'); /* version */
    int variant = hexval(s[19]);
    if ((variant & 0xc) != 0x8)
        fail_msg("id %s: variant nibble %x is not 10xx", s, variant);
    assert_int_equal(id_valid(s, strlen(s)), 1);
}

static void id_format_is_uuidv7(void **state)
{
    (void)state;
    struct id_gen g;
    id_gen_init(&g);
    char id[SOLDR_ID_LEN + 1];
    uint64_t now = 1763787828123ULL; /* 2025-11-22 */
    for (int i = 0; i < 2000; i++) {
        memset(id, 'X', sizeof id);
        id_new(&g, now + (uint64_t)(i / 3), id);
        assert_uuidv7(id);
        assert_int_equal(id_time_ms(id), now + (uint64_t)(i / 3));
    }
    /* A known value: the first 48 bits are the timestamp, big-endian. A fresh
     * generator, since this time is earlier than the ones above. */
    id_gen_init(&g);
    id_new(&g, 0x0123456789abULL, id);
    assert_memory_equal(id, "01234567-89ab-7", 15);
    assert_int_equal(id_time_ms(id), 0x0123456789abULL);
    id_new(&g, 0xffffffffffffULL, id);
    assert_memory_equal(id, "ffffffff-ffff-7", 15);
    assert_int_equal(id_time_ms(id), 0xffffffffffffULL);
}

static void id_valid_rejects(void **state)
{
    (void)state;
    const char *good = "0190f2a4-1b2c-7d3e-8f40-0123456789ab";
    assert_int_equal(id_valid(good, strlen(good)), 1);
    assert_int_equal(id_valid(good, 35), 0);
    assert_int_equal(id_valid("", 0), 0);
    static const char *const bad[] = {
        "0190F2A4-1B2C-7D3E-8F40-0123456789AB", /* upper case */
        "0190f2a4-1b2c-7d3e-8f40-0123456789aB",
        "0190f2a41b2c-7d3e-8f40-0123456789abc", /* dash misplaced */
        "0190f2a4-1b2c-7d3e-8f40_0123456789ab",
        "0190f2a4-1b2c-7d3e-8f40-0123456789ag",
        "0190f2a4-1b2c-7d3e-8f40-0123456789a ",
        "{190f2a4-1b2c-7d3e-8f40-0123456789ab",
        "0190f2a4-1b2c-7d3e-8f40-0123456789ab0", /* too long */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (id_valid(bad[i], strlen(bad[i])))
            fail_msg("id_valid(\"%s\") = 1, want 0", bad[i]);
    /* A NUL inside the length is not a valid character. */
    char withnul[SOLDR_ID_LEN + 1];
    memcpy(withnul, good, sizeof withnul);
    withnul[30] = '\0';
    assert_int_equal(id_valid(withnul, SOLDR_ID_LEN), 0);
}

#define NIDS 100000

static void id_strictly_increasing_same_ms(void **state)
{
    (void)state;
    struct id_gen g;
    id_gen_init(&g);
    char(*ids)[SOLDR_ID_LEN + 1] = malloc(NIDS * sizeof *ids);
    assert_non_null(ids);
    const uint64_t now = 1763787828000ULL;
    for (int i = 0; i < NIDS; i++)
        id_new(&g, now, ids[i]); /* the clock never moves */
    assert_uuidv7(ids[0]);
    assert_int_equal(id_time_ms(ids[0]), now);
    for (int i = 1; i < NIDS; i++) {
        if (strcmp(ids[i - 1], ids[i]) >= 0)
            fail_msg("id %d (%s) is not greater than id %d (%s)", i, ids[i], i - 1, ids[i - 1]);
        assert_true(id_time_ms(ids[i]) >= id_time_ms(ids[i - 1]));
    }
    assert_uuidv7(ids[NIDS - 1]);
    /* Borrowing milliseconds is bounded: at least 2048 ids fit in each one. */
    uint64_t last = id_time_ms(ids[NIDS - 1]);
    assert_true(last > now);
    assert_true(last - now <= NIDS / 2048 + 1);
    free(ids);
}

static void id_strictly_increasing_clock_backwards(void **state)
{
    (void)state;
    struct id_gen g;
    id_gen_init(&g);
    char(*ids)[SOLDR_ID_LEN + 1] = malloc(NIDS * sizeof *ids);
    assert_non_null(ids);
    uint64_t t = 1763787828000ULL, max_seen = 0;
    for (int i = 0; i < NIDS; i++) {
        /* Mostly forward, with jumps back of up to 10 s every 1000 ids. */
        if (i % 1000 == 999)
            t -= 10000;
        else if (i % 7 == 0)
            t += 1;
        id_new(&g, t, ids[i]);
        if (t > max_seen)
            max_seen = t;
        assert_true(id_time_ms(ids[i]) >= max_seen);
    }
    for (int i = 1; i < NIDS; i++)
        if (strcmp(ids[i - 1], ids[i]) >= 0)
            fail_msg("id %d (%s) is not greater than id %d (%s)", i, ids[i], i - 1, ids[i - 1]);
    free(ids);
}

static void id_generators_differ(void **state)
{
    (void)state;
    /* Two generators (two processes, say) in the same millisecond still differ. */
    struct id_gen a, b;
    id_gen_init(&a);
    id_gen_init(&b);
    char x[SOLDR_ID_LEN + 1], y[SOLDR_ID_LEN + 1];
    for (int i = 0; i < 100; i++) {
        id_new(&a, 1000, x);
        id_new(&b, 1000, y);
        assert_string_not_equal(x, y);
    }
}

static void id_time_round_trip(void **state)
{
    (void)state;
    struct id_gen g;
    id_gen_init(&g);
    char id[SOLDR_ID_LEN + 1];
    static const uint64_t times[] = {1,
                                     255,
                                     256,
                                     65535,
                                     1000000,
                                     1700000000000ULL,
                                     1763787828123ULL,
                                     0x800000000000ULL,
                                     0xfffffffffffeULL};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        id_new(&g, times[i], id);
        assert_int_equal(id_time_ms(id), times[i]);
    }
}

/* ---- errors ----------------------------------------------------------------- */

static void strerror_names_codes(void **state)
{
    (void)state;
    static const int codes[] = {SOLDR_ETOOBIG,   SOLDR_ESTORE,  SOLDR_ESCHEMA,    SOLDR_ECONFIG,
                                SOLDR_ENOTFOUND, SOLDR_EEXIST,  SOLDR_EMALFORMED, SOLDR_EBUSY,
                                SOLDR_EFALLBACK, SOLDR_ESTOPPED};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = soldr_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(s, soldr_strerror(codes[k]));
    }
    /* libuv codes pass through. (An unknown code is not tried: uv_strerror
     * allocates, and never frees, a message for it.) */
    assert_string_equal(soldr_strerror(UV_ENOMEM), uv_strerror(UV_ENOMEM));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_append_grows_and_terminates),
        cmocka_unit_test(buf_cap_is_enforced_and_leaves_buffer_unchanged),
        cmocka_unit_test(buf_appendf_formats),
        cmocka_unit_test(buf_steal_hands_over_memory),
        cmocka_unit_test(route_label_matches),
        cmocka_unit_test(route_label_rejects),
        cmocka_unit_test(route_label_valid_checks),
        cmocka_unit_test(id_format_is_uuidv7),
        cmocka_unit_test(id_valid_rejects),
        cmocka_unit_test(id_strictly_increasing_same_ms),
        cmocka_unit_test(id_strictly_increasing_clock_backwards),
        cmocka_unit_test(id_generators_differ),
        cmocka_unit_test(id_time_round_trip),
        cmocka_unit_test(strerror_names_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
