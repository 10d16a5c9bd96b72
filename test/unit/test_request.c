/* Unit tests for src/common/request: the arena, headers, and the JSON line
 * (the stdout fallback record that `soldr replay` reads back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "common/buf.h"
#include "common/errors.h"
#include "common/id.h"
#include "common/request.h"

#define MAX_REQ (4u << 20)

/* ---- helpers ---------------------------------------------------------------- */

static void set_span(struct soldr_request *r, struct span *s, const void *p, size_t n)
{
    assert_int_equal(req_set(r, s, p, n), 0);
}

static void push(struct soldr_request *r, const char *name, size_t nl, const char *value, size_t vl)
{
    assert_int_equal(req_push_header(r, name, nl, value, vl), 0);
}

#define PUSH(r, n, v) push(r, n, sizeof(n) - 1, v, sizeof(v) - 1)

/* A typical request: id, webhook, time, peer, method, target, Host. */
static void base_request(struct soldr_request *r)
{
    req_init(r, MAX_REQ);
    struct id_gen g;
    id_gen_init(&g);
    id_new(&g, 1763787828123ULL, r->id);
    snprintf(r->webhook, sizeof r->webhook, "%s", "tenant-42");
    r->received_at = 1763787828123LL;
    snprintf(r->peer, sizeof r->peer, "%s", "203.0.113.9:51234");
    set_span(r, &r->method, "POST", 4);
    set_span(r, &r->target, "/hooks/stripe?x=1&y=%20", 23);
    PUSH(r, "Host", "tenant-42.wh.localhost:8080");
}

static void assert_span_equal(const struct soldr_request *a, struct span sa,
                              const struct soldr_request *b, struct span sb, const char *what)
{
    if (sa.len != sb.len)
        fail_msg("%s: length %u != %u", what, sa.len, sb.len);
    if (sa.len && memcmp(req_str(a, sa), req_str(b, sb), sa.len) != 0) {
        size_t i = 0;
        while (req_str(a, sa)[i] == req_str(b, sb)[i])
            i++;
        fail_msg("%s: byte %zu differs (0x%02x != 0x%02x)", what, i,
                 (unsigned char)req_str(a, sa)[i], (unsigned char)req_str(b, sb)[i]);
    }
}

/* Every field of the request, byte for byte. */
static void assert_req_equal(const struct soldr_request *a, const struct soldr_request *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->webhook, b->webhook);
    assert_int_equal(a->received_at, b->received_at);
    assert_string_equal(a->peer, b->peer);
    assert_span_equal(a, a->method, b, b->method, "method");
    assert_span_equal(a, a->target, b, b->target, "target");
    assert_span_equal(a, a->body, b, b->body, "body");
    assert_int_equal(a->nheaders, b->nheaders);
    for (size_t i = 0; i < a->nheaders; i++) {
        char what[64];
        snprintf(what, sizeof what, "header %zu name", i);
        assert_span_equal(a, a->headers[i].name, b, b->headers[i].name, what);
        snprintf(what, sizeof what, "header %zu value", i);
        assert_span_equal(a, a->headers[i].value, b, b->headers[i].value, what);
    }
}

/* 1 if s[0..n) is valid UTF-8 (independent of the code under test). */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        static const unsigned min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Serialises r, checks the line is one clean line, parses it back into out
 * (initialised here) and checks out equals r. Returns the line (caller frees). */
static char *round_trip(const struct soldr_request *r, struct soldr_request *out)
{
    struct buf line;
    buf_init(&line, 64u << 20);
    assert_int_equal(req_to_json(r, &line), 0);
    assert_non_null(line.data);
    /* One line that journald keeps as text: no control bytes, valid UTF-8. */
    for (size_t i = 0; i < line.len; i++)
        if ((unsigned char)line.data[i] < 0x20 || line.data[i] == 0x7f)
            fail_msg("record has control byte 0x%02x at %zu: %s", (unsigned char)line.data[i], i,
                     line.data);
    if (!utf8_ok((const unsigned char *)line.data, line.len))
        fail_msg("record is not valid UTF-8: %s", line.data);
    req_init(out, MAX_REQ);
    int rc = req_from_json(out, line.data, line.len);
    if (rc != 0)
        fail_msg("req_from_json = %d (%s) for %s", rc, soldr_strerror(rc), line.data);
    assert_req_equal(r, out);
    size_t n;
    return buf_steal(&line, &n);
}

/* ---- JSON round trip -------------------------------------------------------- */

#define S(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

static void json_record_fields(void **state)
{
    (void)state;
    struct soldr_request r, back;
    base_request(&r);
    PUSH(&r, "Content-Type", "application/json");
    set_span(&r, &r.body, "hello", 5);
    char *line = round_trip(&r, &back);
    cJSON *o = cJSON_Parse(line);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "soldr.request");
    assert_int_equal(cJSON_GetObjectItem(o, "v")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(o, "id")->valuestring, r.id);
    assert_true(cJSON_GetObjectItem(o, "received_at")->valuedouble == 1763787828123.0);
    assert_string_equal(cJSON_GetObjectItem(o, "webhook")->valuestring, "tenant-42");
    assert_string_equal(cJSON_GetObjectItem(o, "peer")->valuestring, "203.0.113.9:51234");
    assert_string_equal(cJSON_GetObjectItem(o, "host")->valuestring, "tenant-42.wh.localhost:8080");
    assert_string_equal(cJSON_GetObjectItem(o, "method")->valuestring, "POST");
    assert_string_equal(cJSON_GetObjectItem(o, "target")->valuestring, "/hooks/stripe?x=1&y=%20");
    assert_null(cJSON_GetObjectItem(o, "target_b64"));
    assert_null(cJSON_GetObjectItem(o, "headers_b64"));
    cJSON *h = cJSON_GetObjectItem(o, "headers");
    assert_int_equal(cJSON_GetArraySize(h), 2);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(h, 1), 0)->valuestring,
                        "Content-Type");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(h, 1), 1)->valuestring,
                        "application/json");
    assert_string_equal(cJSON_GetObjectItem(o, "body_b64")->valuestring, "aGVsbG8=");
    cJSON_Delete(o);
    /* Appends: what was in the buffer stays. */
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_appends(&b, "prefix "), 0);
    assert_int_equal(req_to_json(&r, &b), 0);
    assert_int_equal(b.len, 7 + strlen(line));
    assert_string_equal(b.data + 7, line);
    /* A too small buffer is an error, not a truncated record. */
    struct buf small;
    buf_init(&small, 20);
    assert_int_not_equal(req_to_json(&r, &small), 0);
    buf_free(&small);
    buf_free(&b);
    free(line);
    req_free(&r);
    req_free(&back);
}

static void json_binary_body_all_bytes(void **state)
{
    (void)state;
    struct soldr_request r, back;
    base_request(&r);
    unsigned char body[256 * 3 + 1];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (unsigned char)(i * 7 + i / 256); /* all 256 values, several orders */
    set_span(&r, &r.body, body, sizeof body);
    char *line = round_trip(&r, &back);
    assert_memory_equal(req_str(&back, back.body), body, sizeof body);
    free(line);
    req_free(&back);
    /* Each byte value alone, too (padding lengths 1, 2, 3 of base64). */
    for (int n = 1; n <= 3; n++) {
        for (int c = 0; c < 256; c++) {
            struct soldr_request a, b2;
            base_request(&a);
            unsigned char bytes[3] = {(unsigned char)c, (unsigned char)(255 - c), 0};
            set_span(&a, &a.body, bytes, (size_t)n);
            free(round_trip(&a, &b2));
            req_free(&a);
            req_free(&b2);
        }
    }
    req_free(&r);
}

static void json_large_body(void **state)
{
    (void)state;
    struct soldr_request r, back;
    base_request(&r);
    size_t n = 1u << 20;
    unsigned char *body = malloc(n);
    assert_non_null(body);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        body[i] = (unsigned char)x;
    }
    set_span(&r, &r.body, body, n);
    free(round_trip(&r, &back));
    assert_memory_equal(req_str(&back, back.body), body, n);
    free(body);
    req_free(&r);
    req_free(&back);
}

static void json_empty_body_and_no_headers(void **state)
{
    (void)state;
    struct soldr_request r, back;
    req_init(&r, MAX_REQ);
    snprintf(r.id, sizeof r.id, "%s", "0190f2a4-1b2c-7d3e-8f40-0123456789ab");
    snprintf(r.webhook, sizeof r.webhook, "%s", "a");
    r.received_at = 0;
    set_span(&r, &r.method, "GET", 3);
    set_span(&r, &r.target, "/", 1);
    char *line = round_trip(&r, &back);
    assert_int_equal(back.body.len, 0);
    assert_int_equal(back.nheaders, 0);
    assert_string_equal(back.peer, "");
    assert_non_null(strstr(line, "\"body_b64\":\"\""));
    assert_non_null(strstr(line, "\"headers\":[]"));
    assert_non_null(strstr(line, "\"host\":null"));
    free(line);
    req_free(&r);
    req_free(&back);
}

static void json_repeated_headers_in_order(void **state)
{
    (void)state;
    struct soldr_request r, back;
    base_request(&r);
    PUSH(&r, "X-Dup", "first");
    PUSH(&r, "Accept", "*/*");
    PUSH(&r, "x-dup", "second");
    PUSH(&r, "X-DUP", "");
    PUSH(&r, "X-Dup", "  spaced  ");
    PUSH(&r, "X-Tab", "a\tb");
    PUSH(&r, "X-Utf8", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"); /* é 日本 😀 */
    PUSH(&r, "X-Quote", "\"quoted\" \\ back/slash");
    PUSH(&r, "Set-Cookie", "a=1; Path=/");
    PUSH(&r, "Set-Cookie", "b=2; Path=/");
    char *line = round_trip(&r, &back);
    /* All of these are clean UTF-8: the plain form is used. */
    assert_non_null(strstr(line, "\"headers\":[["));
    assert_null(strstr(line, "headers_b64"));
    assert_int_equal(back.nheaders, 11);
    size_t len, count;
    const char *v = req_header_get(&back, "x-dup", &len, &count);
    assert_int_equal(count, 4);
    assert_int_equal(len, 5);
    assert_memory_equal(v, "first", 5);
    assert_memory_equal(req_str(&back, back.headers[3].name), "x-dup", 5);
    assert_memory_equal(req_str(&back, back.headers[3].value), "second", 6);
    free(line);
    req_free(&r);
    req_free(&back);
}

static void json_invalid_utf8_header_uses_b64(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        size_t n;
    } bad[] = {
        S("\xff"),
        S("caf\xe9"),               /* Latin-1 */
        S("\xc0\x80"),              /* overlong NUL */
        S("\xe0\x80\xaf"),          /* overlong '/' */
        S("\xed\xa0\x80"),          /* surrogate */
        S("\xf4\x90\x80\x80"),      /* > U+10FFFF */
        S("abc\xe6\x97"),           /* truncated sequence at the end */
        S("\x80rest"),              /* lone continuation byte */
        S("nul\0inside"),           /* NUL */
        S("esc\x1b[0m"),            /* control character */
        S("line\r\nX-Injected: 1"), /* CR LF */
        S("del\x7f"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct soldr_request r, back;
        base_request(&r);
        PUSH(&r, "X-Before", "plain");
        push(&r, "X-Bad", 5, bad[i].v, bad[i].n);
        PUSH(&r, "X-After", "plain too");
        char *line = round_trip(&r, &back);
        if (!strstr(line, "\"headers_b64\":[[") || strstr(line, "\"headers\":"))
            fail_msg("case %zu: header value needs headers_b64: %s", i, line);
        /* The whole list is base64: names too, so "X-Before" does not appear. */
        assert_null(strstr(line, "X-Before"));
        assert_memory_equal(req_str(&back, back.headers[2].value), bad[i].v, bad[i].n);
        free(line);
        req_free(&r);
        req_free(&back);
    }
    /* A bad header name does it too. */
    struct soldr_request r, back;
    base_request(&r);
    push(&r, "X-\xff", 3, "v", 1);
    char *line = round_trip(&r, &back);
    assert_non_null(strstr(line, "\"headers_b64\""));
    free(line);
    req_free(&r);
    req_free(&back);
}

static void json_invalid_target_uses_b64(void **state)
{
    (void)state;
    static const struct {
        const char *t;
        size_t n;
    } bad[] = {
        S("/\xff\xfe"), S("/caf\xe9?q=\xe9"), S("/a\nb"), S("/a\rb"),
        S("/\x01"),     S("/nul\0x"),         S("/\x7f"), S("/\xed\xbf\xbf"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct soldr_request r, back;
        base_request(&r);
        set_span(&r, &r.target, bad[i].t, bad[i].n);
        set_span(&r, &r.body, "x", 1);
        char *line = round_trip(&r, &back);
        if (!strstr(line, "\"target_b64\":\"") || strstr(line, "\"target\":"))
            fail_msg("case %zu: target needs target_b64: %s", i, line);
        /* Headers were clean: they stay plain. */
        assert_non_null(strstr(line, "\"headers\":[["));
        free(line);
        req_free(&r);
        req_free(&back);
    }
    /* Both at once. */
    struct soldr_request r, back;
    base_request(&r);
    set_span(&r, &r.target, "/\xff", 2);
    push(&r, "X-Bin", 5, "\x01\x02\xff", 3);
    char *line = round_trip(&r, &back);
    assert_non_null(strstr(line, "\"target_b64\""));
    assert_non_null(strstr(line, "\"headers_b64\""));
    free(line);
    req_free(&r);
    req_free(&back);
    /* Valid UTF-8 in the target stays plain. */
    base_request(&r);
    set_span(&r, &r.target, "/caf\xc3\xa9", 6);
    line = round_trip(&r, &back);
    assert_non_null(strstr(line, "\"target\":\"/caf\xc3\xa9\""));
    free(line);
    req_free(&r);
    req_free(&back);
}

/* ---- req_from_json rejects -------------------------------------------------- */

/* A valid record as a cJSON object, to be broken by the tests. */
static cJSON *valid_record(void)
{
    struct soldr_request r;
    base_request(&r);
    PUSH(&r, "X-A", "1");
    set_span(&r, &r.body, "hello", 5);
    struct buf line;
    buf_init(&line, 1 << 20);
    assert_int_equal(req_to_json(&r, &line), 0);
    cJSON *o = cJSON_Parse(line.data);
    assert_non_null(o);
    buf_free(&line);
    req_free(&r);
    return o;
}

/* Parses cJSON o printed and returns req_from_json's result; deletes o. */
static int parse_record(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    assert_non_null(s);
    cJSON_Delete(o);
    struct soldr_request r;
    req_init(&r, MAX_REQ);
    int rc = req_from_json(&r, s, strlen(s));
    req_free(&r);
    cJSON_free(s);
    return rc;
}

#define EXPECT_MALFORMED(o, what)                                                                  \
    do {                                                                                           \
        int rc_ = parse_record(o);                                                                 \
        if (rc_ != SOLDR_EMALFORMED)                                                               \
            fail_msg("%s: req_from_json = %d, want SOLDR_EMALFORMED", what, rc_);                  \
    } while (0)

static void from_json_valid_record_parses(void **state)
{
    (void)state;
    assert_int_equal(parse_record(valid_record()), 0); /* the baseline the rejects break */
}

static void from_json_rejects_fields(void **state)
{
    (void)state;
    cJSON *o;

    o = valid_record();
    cJSON_ReplaceItemInObject(o, "type", cJSON_CreateString("soldr.attempt"));
    EXPECT_MALFORMED(o, "wrong type");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "type", cJSON_CreateNumber(1));
    EXPECT_MALFORMED(o, "type not a string");
    o = valid_record();
    cJSON_DeleteItemFromObject(o, "type");
    EXPECT_MALFORMED(o, "missing type");

    o = valid_record();
    cJSON_DeleteItemFromObject(o, "id");
    EXPECT_MALFORMED(o, "missing id");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "id", cJSON_CreateString("not-an-id"));
    EXPECT_MALFORMED(o, "invalid id");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "id", cJSON_CreateString("0190F2A4-1B2C-7D3E-8F40-0123456789AB"));
    EXPECT_MALFORMED(o, "upper-case id");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "id",
                              cJSON_CreateString("0190f2a4-1b2c-7d3e-8f40-0123456789ab-and-more"));
    EXPECT_MALFORMED(o, "too long id");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "id", cJSON_CreateString(""));
    EXPECT_MALFORMED(o, "empty id");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "id", cJSON_CreateNumber(12));
    EXPECT_MALFORMED(o, "numeric id");

    o = valid_record();
    cJSON_ReplaceItemInObject(o, "webhook", cJSON_CreateString("Bad_Label"));
    EXPECT_MALFORMED(o, "invalid label");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "webhook", cJSON_CreateString(""));
    EXPECT_MALFORMED(o, "empty label");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "webhook", cJSON_CreateString("a.b"));
    EXPECT_MALFORMED(o, "label with a dot");
    o = valid_record();
    cJSON_ReplaceItemInObject(
        o, "webhook",
        cJSON_CreateString(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
    EXPECT_MALFORMED(o, "label too long");
    o = valid_record();
    cJSON_DeleteItemFromObject(o, "webhook");
    EXPECT_MALFORMED(o, "missing webhook");

    o = valid_record();
    cJSON_DeleteItemFromObject(o, "received_at");
    EXPECT_MALFORMED(o, "missing received_at");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "received_at", cJSON_CreateString("1763787828123"));
    EXPECT_MALFORMED(o, "received_at as string");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "received_at", cJSON_CreateNumber(-1));
    EXPECT_MALFORMED(o, "negative received_at");

    o = valid_record();
    cJSON_DeleteItemFromObject(o, "method");
    EXPECT_MALFORMED(o, "missing method");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "method", cJSON_CreateString(""));
    EXPECT_MALFORMED(o, "empty method");
    o = valid_record();
    cJSON_DeleteItemFromObject(o, "target");
    EXPECT_MALFORMED(o, "missing target");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "target", cJSON_CreateNull());
    EXPECT_MALFORMED(o, "null target");

    o = valid_record();
    cJSON_DeleteItemFromObject(o, "headers");
    EXPECT_MALFORMED(o, "missing headers");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "headers", cJSON_CreateString("X-A: 1"));
    EXPECT_MALFORMED(o, "headers not an array");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "headers", cJSON_Parse("[[\"X-A\",\"1\",\"extra\"]]"));
    EXPECT_MALFORMED(o, "header with three items");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "headers", cJSON_Parse("[[\"X-A\"]]"));
    EXPECT_MALFORMED(o, "header with one item");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "headers", cJSON_Parse("[\"X-A: 1\"]"));
    EXPECT_MALFORMED(o, "header not a pair");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "headers", cJSON_Parse("[[\"X-A\",1]]"));
    EXPECT_MALFORMED(o, "numeric header value");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "headers", cJSON_Parse("[[\"\",\"v\"]]"));
    EXPECT_MALFORMED(o, "empty header name");
    o = valid_record();
    cJSON_DeleteItemFromObject(o, "headers");
    cJSON_AddItemToObject(o, "headers_b64", cJSON_Parse("[[\"WC1B\",\"!!!!\"]]"));
    EXPECT_MALFORMED(o, "bad base64 in headers_b64");

    o = valid_record();
    cJSON_DeleteItemFromObject(o, "body_b64");
    EXPECT_MALFORMED(o, "missing body_b64");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "body_b64", cJSON_CreateString("!!!!"));
    EXPECT_MALFORMED(o, "bad base64 body");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "body_b64", cJSON_CreateString("aGVs bG8="));
    EXPECT_MALFORMED(o, "space inside base64 body");
    o = valid_record();
    cJSON_ReplaceItemInObject(o, "body_b64", cJSON_CreateString("=aGVs"));
    EXPECT_MALFORMED(o, "padding first");
    o = valid_record();
    cJSON_DeleteItemFromObject(o, "target");
    cJSON_AddItemToObject(o, "target_b64", cJSON_CreateString("L2Fi*"));
    EXPECT_MALFORMED(o, "bad base64 target");
}

/* Base64 whose length is not a multiple of 4 is truncated or corrupt: it
 * must not silently turn into a shorter body. */
static void from_json_rejects_truncated_base64(void **state)
{
    (void)state;
    static const char *const truncated[] = {"a", "aGVsbG8", "aGVsbG", "aGVsb"};
    int failed = 0;
    for (size_t i = 0; i < sizeof truncated / sizeof truncated[0]; i++) {
        cJSON *o = valid_record();
        cJSON_ReplaceItemInObject(o, "body_b64", cJSON_CreateString(truncated[i]));
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        struct soldr_request r;
        req_init(&r, MAX_REQ);
        int rc = req_from_json(&r, s, strlen(s));
        if (rc != SOLDR_EMALFORMED) {
            print_error("body_b64 \"%s\": req_from_json = %d with a %u-byte body \"%.*s\", "
                        "want SOLDR_EMALFORMED\n",
                        truncated[i], rc, r.body.len, (int)r.body.len, req_str(&r, r.body));
            failed++;
        }
        req_free(&r);
        cJSON_free(s);
    }
    if (failed)
        fail_msg("%d truncated base64 bodies accepted", failed);
}

static void from_json_rejects_not_a_record(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "hello",
        "[]",
        "null",
        "42",
        "\"soldr.request\"",
        "{}",
        "{\"type\":\"soldr.request\"}",
        "{\"type\":\"soldr.request\",",
        "soldr: starting",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct soldr_request r;
        req_init(&r, MAX_REQ);
        int rc = req_from_json(&r, bad[i], strlen(bad[i]));
        if (rc != SOLDR_EMALFORMED)
            fail_msg("req_from_json(\"%s\") = %d, want SOLDR_EMALFORMED", bad[i], rc);
        req_free(&r);
    }
}

static void from_json_rejects_every_truncation(void **state)
{
    (void)state;
    struct soldr_request r;
    base_request(&r);
    PUSH(&r, "X-A", "1");
    set_span(&r, &r.body, "hello world", 11);
    struct buf line;
    buf_init(&line, 1 << 20);
    assert_int_equal(req_to_json(&r, &line), 0);
    req_free(&r);
    /* len bounds the parse: a full line in a longer buffer is cut at len. */
    for (size_t n = 0; n < line.len; n++) {
        struct soldr_request t;
        req_init(&t, MAX_REQ);
        int rc = req_from_json(&t, line.data, n);
        if (rc != SOLDR_EMALFORMED)
            fail_msg("record truncated to %zu of %zu bytes: req_from_json = %d", n, line.len, rc);
        req_free(&t);
    }
    struct soldr_request t;
    req_init(&t, MAX_REQ);
    assert_int_equal(req_from_json(&t, line.data, line.len), 0);
    req_free(&t);
    buf_free(&line);
}

/* ---- headers block ---------------------------------------------------------- */

static void headers_block_round_trip(void **state)
{
    (void)state;
    struct soldr_request r, back;
    req_init(&r, MAX_REQ);
    PUSH(&r, "Host", "x.wh.localhost");
    PUSH(&r, "X-Empty", "");
    PUSH(&r, "X-Lead", "  two leading spaces");
    PUSH(&r, "X-Trail", "trailing  ");
    PUSH(&r, "X-Colon", "a: b: c");
    PUSH(&r, "X-Dup", "1");
    PUSH(&r, "x-dup", "2");
    PUSH(&r, "X-Utf8", "\xe6\x97\xa5\xff");
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(req_headers_block(&r, &b), 0);
    assert_string_equal(b.data, "Host: x.wh.localhost\r\n"
                                "X-Empty: \r\n"
                                "X-Lead:   two leading spaces\r\n"
                                "X-Trail: trailing  \r\n"
                                "X-Colon: a: b: c\r\n"
                                "X-Dup: 1\r\n"
                                "x-dup: 2\r\n"
                                "X-Utf8: \xe6\x97\xa5\xff\r\n");
    req_init(&back, MAX_REQ);
    assert_int_equal(req_headers_parse(&back, b.data, b.len), 0);
    assert_int_equal(back.nheaders, r.nheaders);
    for (size_t i = 0; i < r.nheaders; i++) {
        assert_span_equal(&r, r.headers[i].name, &back, back.headers[i].name, "name");
        assert_span_equal(&r, r.headers[i].value, &back, back.headers[i].value, "value");
    }
    /* Parsing appends to what is there. */
    assert_int_equal(req_headers_parse(&back, "A: b\r\n", 6), 0);
    assert_int_equal(back.nheaders, r.nheaders + 1);
    /* No headers: an empty block, parsed as none. */
    struct soldr_request empty;
    req_init(&empty, MAX_REQ);
    buf_reset(&b);
    assert_int_equal(req_headers_block(&empty, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(req_headers_parse(&empty, "", 0), 0);
    assert_int_equal(empty.nheaders, 0);
    /* A value without the optional space after the colon. */
    assert_int_equal(req_headers_parse(&empty, "A:b\r\n", 5), 0);
    assert_int_equal(empty.nheaders, 1);
    assert_memory_equal(req_str(&empty, empty.headers[0].value), "b", 1);
    assert_int_equal(empty.headers[0].value.len, 1);
    /* A cap that the block does not fit in is an error. */
    struct buf small;
    buf_init(&small, 10);
    assert_int_equal(req_headers_block(&r, &small), SOLDR_ETOOBIG);
    buf_free(&small);
    req_free(&empty);
    buf_free(&b);
    req_free(&r);
    req_free(&back);
}

static void headers_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "A: b",                         /* no CRLF */
        "A: b\n",                       /* LF only */
        "NoColon\r\n",   ": value\r\n", /* empty name */
        "A: b\r\nC\r\n", "\r\n",        "A: b\r\nC: d",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct soldr_request r;
        req_init(&r, MAX_REQ);
        int rc = req_headers_parse(&r, bad[i], strlen(bad[i]));
        if (rc != SOLDR_EMALFORMED)
            fail_msg("req_headers_parse(case %zu) = %d, want SOLDR_EMALFORMED", i, rc);
        req_free(&r);
    }
}

static void header_get_case_insensitive(void **state)
{
    (void)state;
    struct soldr_request r;
    req_init(&r, MAX_REQ);
    PUSH(&r, "Content-Type", "text/plain");
    PUSH(&r, "X-Multi", "one");
    PUSH(&r, "Host", "h");
    PUSH(&r, "x-multi", "two");
    PUSH(&r, "X-MULTI", "three");
    PUSH(&r, "X-Multiple", "not me");
    size_t len = 99, count = 99;
    const char *v = req_header_get(&r, "content-type", &len, &count);
    assert_non_null(v);
    assert_int_equal(len, 10);
    assert_memory_equal(v, "text/plain", 10);
    assert_int_equal(count, 1);
    v = req_header_get(&r, "x-MuLtI", &len, &count);
    assert_non_null(v);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "one", 3);
    assert_int_equal(count, 3);
    v = req_header_get(&r, "X-Mult", &len, &count);
    assert_null(v);
    assert_int_equal(count, 0);
    v = req_header_get(&r, "Missing", NULL, &count);
    assert_null(v);
    assert_int_equal(count, 0);
    v = req_header_get(&r, "HOST", &len, NULL);
    assert_non_null(v);
    assert_int_equal(len, 1);
    assert_int_equal(v[0], 'h');
    req_free(&r);
    /* No headers at all. */
    req_init(&r, MAX_REQ);
    count = 7;
    assert_null(req_header_get(&r, "host", &len, &count));
    assert_int_equal(count, 0);
    req_free(&r);
}

static void arena_cap(void **state)
{
    (void)state;
    struct soldr_request r;
    req_init(&r, 16);
    set_span(&r, &r.method, "POST", 4);
    assert_int_equal(req_set(&r, &r.target, "/0123456789abcdef", 17), SOLDR_ETOOBIG);
    assert_int_equal(r.target.len, 0);
    assert_int_equal(r.data.len, 4);
    /* A header that does not fit is not half added. */
    assert_int_equal(req_push_header(&r, "Name", 4, "a value too long", 16), SOLDR_ETOOBIG);
    assert_int_equal(r.nheaders, 0);
    /* req_extend grows a span that ends at the arena's end. */
    set_span(&r, &r.body, "ab", 2);
    assert_int_equal(req_extend(&r, &r.body, "cd", 2), 0);
    assert_int_equal(r.body.len, 4);
    assert_memory_equal(req_str(&r, r.body), "abcd", 4);
    assert_memory_equal(req_str(&r, r.method), "POST", 4);
    req_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_record_fields),
        cmocka_unit_test(json_binary_body_all_bytes),
        cmocka_unit_test(json_large_body),
        cmocka_unit_test(json_empty_body_and_no_headers),
        cmocka_unit_test(json_repeated_headers_in_order),
        cmocka_unit_test(json_invalid_utf8_header_uses_b64),
        cmocka_unit_test(json_invalid_target_uses_b64),
        cmocka_unit_test(from_json_valid_record_parses),
        cmocka_unit_test(from_json_rejects_fields),
        cmocka_unit_test(from_json_rejects_truncated_base64),
        cmocka_unit_test(from_json_rejects_not_a_record),
        cmocka_unit_test(from_json_rejects_every_truncation),
        cmocka_unit_test(headers_block_round_trip),
        cmocka_unit_test(headers_parse_rejects),
        cmocka_unit_test(header_get_case_insensitive),
        cmocka_unit_test(arena_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
