/* A received HTTP request, exactly as it came in, plus soldr's metadata.
 *
 * Every byte of the request lives in one arena (`data`): method, target,
 * header names and values and the body, each addressed by offset and length,
 * so a request is two allocations however many headers it has. Header order
 * and duplicates are kept. Strings in the arena are not NUL-terminated.
 *
 * The same struct is what httpd hands to a handler, what ingest gives the
 * store, and what the stdout fallback record and `soldr replay` carry. */
#ifndef SOLDR_REQUEST_H
#define SOLDR_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/id.h"
#include "common/route.h"

struct span {
    uint32_t off;
    uint32_t len;
};

struct req_header {
    struct span name;
    struct span value;
};

struct soldr_request {
    char id[SOLDR_ID_LEN + 1];         /* empty until ingest assigns one */
    char webhook[SOLDR_LABEL_MAX + 1]; /* label from the Host header */
    long long received_at;             /* unix ms */
    char peer[64];                     /* "ip:port" of the client */
    struct buf data;                   /* the arena */
    struct span method, target, body;
    struct req_header *headers;
    size_t nheaders, headers_cap;
};

/* Initialises an empty request whose arena may hold at most max_bytes. */
void req_init(struct soldr_request *r, size_t max_bytes);
/* Frees the arena and header table (not r itself). */
void req_free(struct soldr_request *r);
/* Appends bytes to the arena and returns 0, SOLDR_ETOOBIG or UV_ENOMEM.
 * req_extend grows span s, which must end at the arena's end. */
int req_extend(struct soldr_request *r, struct span *s, const void *p, size_t n);
/* Starts a new header (empty name and value); 0 or UV_ENOMEM. */
int req_add_header(struct soldr_request *r);
/* Convenience for building a request from whole strings (replay, tests). */
int req_set(struct soldr_request *r, struct span *s, const void *p, size_t n);
int req_push_header(struct soldr_request *r, const char *name, size_t nl, const char *value,
                    size_t vl);

static inline const char *req_str(const struct soldr_request *r, struct span s)
{
    return r->data.data ? r->data.data + s.off : "";
}

/* The first header named `name` (case-insensitive): its value, or NULL.
 * *count receives how many headers have that name. */
const char *req_header_get(const struct soldr_request *r, const char *name, size_t *len,
                           size_t *count);

/* Serialises the header list as "Name: value\r\n" lines (the storage form). */
int req_headers_block(const struct soldr_request *r, struct buf *out);
/* Parses that form back, appending the headers to r. SOLDR_EMALFORMED if bad. */
int req_headers_parse(struct soldr_request *r, const char *block, size_t len);

/* The stdout fallback record, one JSON line without the trailing newline:
 * {"type":"soldr.request","v":1,"id":..,"received_at":ms,"webhook":..,
 *  "peer":..,"host":..,"method":..,"target":..,"headers":[[k,v],..],
 *  "body_b64":..}
 * Strings that are not clean UTF-8 (or hold control characters) would not
 * survive journald, so such a target becomes "target_b64" and such a header
 * list becomes "headers_b64" (each name and value base64). Appends to out. */
int req_to_json(const struct soldr_request *r, struct buf *out);
/* Parses one record (as written above) into an initialised, empty r.
 * SOLDR_EMALFORMED for anything that is not a valid record. */
int req_from_json(struct soldr_request *r, const char *line, size_t len);

#endif
