/* fuzz_replay_line: the stdout request record (src/common/request.c).
 *
 * 1. req_from_json on arbitrary bytes never crashes; a record it accepts
 *    has a valid id and webhook label and a method.
 * 2. Round trip: for a record that parses, req_to_json then req_from_json
 *    gives the same request byte for byte (id, webhook, received_at, peer,
 *    method, target, headers in order, body), and serialising that again
 *    gives the same line: what the fallback writes, replay restores.
 * 3. req_headers_parse on the same bytes (the storage form of a header
 *    list): what parses, req_headers_block writes back to a block that
 *    parses to the same headers, and is a fixed point from then on. */
#include <string.h>

#include "common/id.h"
#include "common/request.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_span(const struct soldr_request *a, struct span sa, const struct soldr_request *b,
                      struct span sb, const char *what)
{
    FUZZ_CHECK(sa.len == sb.len && memcmp(req_str(a, sa), req_str(b, sb), sa.len) == 0,
               "round trip changed the %s: \"%.*s\" became \"%.*s\"", what,
               (int)(sa.len > 200 ? 200 : sa.len), req_str(a, sa),
               (int)(sb.len > 200 ? 200 : sb.len), req_str(b, sb));
}

static void same_headers(const struct soldr_request *a, const struct soldr_request *b)
{
    FUZZ_CHECK(a->nheaders == b->nheaders, "round trip changed the header count: %zu became %zu",
               a->nheaders, b->nheaders);
    for (size_t i = 0; i < a->nheaders; i++) {
        same_span(a, a->headers[i].name, b, b->headers[i].name, "header name");
        same_span(a, a->headers[i].value, b, b->headers[i].value, "header value");
    }
}

static void record_round_trip(const uint8_t *data, size_t size)
{
    struct soldr_request a, b;
    req_init(&a, (size_t)-1);
    req_init(&b, (size_t)-1);
    struct buf j1, j2;
    buf_init(&j1, (size_t)-1);
    buf_init(&j2, (size_t)-1);
    if (req_from_json(&a, (const char *)data, size) == 0) {
        FUZZ_CHECK(id_valid(a.id, strlen(a.id)) && route_label_valid(a.webhook) && a.method.len,
                   "an accepted record without a valid id, webhook or method");
        FUZZ_CHECK(req_to_json(&a, &j1) == 0, "req_to_json failed on a parsed record");
        int rc = req_from_json(&b, j1.data, j1.len);
        FUZZ_CHECK(rc == 0, "req_from_json refused what req_to_json wrote (%d): %.*s", rc,
                   (int)(j1.len > 500 ? 500 : j1.len), j1.data);
        FUZZ_CHECK(strcmp(a.id, b.id) == 0 && strcmp(a.webhook, b.webhook) == 0 &&
                       strcmp(a.peer, b.peer) == 0 && a.received_at == b.received_at,
                   "round trip changed id, webhook, peer or received_at: %.*s",
                   (int)(j1.len > 500 ? 500 : j1.len), j1.data);
        same_span(&a, a.method, &b, b.method, "method");
        same_span(&a, a.target, &b, b.target, "target");
        same_span(&a, a.body, &b, b.body, "body");
        same_headers(&a, &b);
        FUZZ_CHECK(req_to_json(&b, &j2) == 0 && j1.len == j2.len &&
                       memcmp(j1.data, j2.data, j1.len) == 0,
                   "the record is not a fixed point:\n%s\n%s", j1.data, j2.data ? j2.data : "");
    }
    req_free(&a);
    req_free(&b);
    buf_free(&j1);
    buf_free(&j2);
}

static void headers_round_trip(const uint8_t *data, size_t size)
{
    struct soldr_request a, b, c;
    req_init(&a, (size_t)-1);
    req_init(&b, (size_t)-1);
    req_init(&c, (size_t)-1);
    struct buf b1, b2;
    buf_init(&b1, (size_t)-1);
    buf_init(&b2, (size_t)-1);
    if (req_headers_parse(&a, (const char *)data, size) == 0) {
        FUZZ_CHECK(req_headers_block(&a, &b1) == 0, "req_headers_block");
        int rc = req_headers_parse(&b, b1.data ? b1.data : "", b1.len);
        FUZZ_CHECK(rc == 0, "req_headers_parse refused what req_headers_block wrote: %d", rc);
        /* The one normalisation allowed: one space after the colon. */
        same_headers(&a, &b);
        FUZZ_CHECK(req_headers_block(&b, &b2) == 0 && b1.len == b2.len &&
                       (b1.len == 0 || memcmp(b1.data, b2.data, b1.len) == 0),
                   "the header block is not a fixed point");
        FUZZ_CHECK(req_headers_parse(&c, b2.data ? b2.data : "", b2.len) == 0, "third parse");
        same_headers(&b, &c);
    }
    req_free(&a);
    req_free(&b);
    req_free(&c);
    buf_free(&b1);
    buf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once++)
        fuzz_process_init();
    record_round_trip(data, size);
    headers_round_trip(data, size);
    return 0;
}
