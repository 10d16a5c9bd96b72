#include "common/request.h"
#include "common/text.h"

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

void req_init(struct soldr_request *r, size_t max_bytes)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->data, max_bytes);
}

void req_free(struct soldr_request *r)
{
    buf_free(&r->data);
    free(r->headers);
    r->headers = NULL;
    r->nheaders = r->headers_cap = 0;
}

int req_extend(struct soldr_request *r, struct span *s, const void *p, size_t n)
{
    if (s->len == 0)
        s->off = (uint32_t)r->data.len;
    if (r->data.len + n > UINT32_MAX)
        return SOLDR_ETOOBIG;
    int rc = buf_append(&r->data, p, n);
    if (rc == 0)
        s->len += (uint32_t)n;
    return rc;
}

int req_set(struct soldr_request *r, struct span *s, const void *p, size_t n)
{
    s->len = 0;
    s->off = (uint32_t)r->data.len;
    return req_extend(r, s, p, n);
}

int req_add_header(struct soldr_request *r)
{
    if (r->nheaders == r->headers_cap) {
        size_t cap = r->headers_cap ? r->headers_cap * 2 : 16;
        struct req_header *h = realloc(r->headers, cap * sizeof *h);
        if (!h)
            return UV_ENOMEM;
        r->headers = h;
        r->headers_cap = cap;
    }
    memset(&r->headers[r->nheaders++], 0, sizeof(struct req_header));
    return 0;
}

int req_push_header(struct soldr_request *r, const char *name, size_t nl, const char *value,
                    size_t vl)
{
    int rc = req_add_header(r);
    if (rc)
        return rc;
    struct req_header *h = &r->headers[r->nheaders - 1];
    if ((rc = req_set(r, &h->name, name, nl)) || (rc = req_set(r, &h->value, value, vl)))
        r->nheaders--;
    return rc;
}

const char *req_header_get(const struct soldr_request *r, const char *name, size_t *len,
                           size_t *count)
{
    const char *found = NULL;
    size_t nl = strlen(name), n = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct req_header *h = &r->headers[i];
        if (h->name.len != nl || strncasecmp(req_str(r, h->name), name, nl) != 0)
            continue;
        if (!found) {
            found = req_str(r, h->value);
            if (len)
                *len = h->value.len;
        }
        n++;
    }
    if (count)
        *count = n;
    return found;
}

int req_headers_block(const struct soldr_request *r, struct buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < r->nheaders && !rc; i++) {
        const struct req_header *h = &r->headers[i];
        if (!(rc = buf_append(out, req_str(r, h->name), h->name.len)) &&
            !(rc = buf_append(out, ": ", 2)) &&
            !(rc = buf_append(out, req_str(r, h->value), h->value.len)))
            rc = buf_append(out, "\r\n", 2);
    }
    return rc;
}

int req_headers_parse(struct soldr_request *r, const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!eol || !colon || colon > eol || colon == p)
            return SOLDR_EMALFORMED;
        const char *v = colon + 1;
        if (v < eol && *v == ' ')
            v++;
        int rc = req_push_header(r, p, (size_t)(colon - p), v, (size_t)(eol - v));
        if (rc)
            return rc;
        p = eol + 2;
    }
    return 0;
}

/* ---- JSON record ---------------------------------------------------------- */

/* 1 if s[0..n) is valid UTF-8 without control characters other than tab. */
static int clean_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return utf8_valid(s, n);
}

/* A cJSON string holding s[0..n) as text (clean) or base64 (b64 != 0). */
static cJSON *json_bytes(const char *s, size_t n, int b64)
{
    if (!b64) {
        char *tmp = malloc(n + 1);
        if (!tmp)
            return NULL;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        cJSON *j = cJSON_CreateString(tmp);
        free(tmp);
        return j;
    }
    size_t olen = 0;
    mbedtls_base64_encode(NULL, 0, &olen, (const unsigned char *)s, n);
    unsigned char *out = malloc(olen + 1);
    if (!out)
        return NULL;
    if (mbedtls_base64_encode(out, olen + 1, &olen, (const unsigned char *)s, n) != 0) {
        free(out);
        return NULL;
    }
    out[olen] = '\0';
    cJSON *j = cJSON_CreateString((char *)out);
    free(out);
    return j;
}

static int add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return -1;
    cJSON_AddItemToObject(obj, key, item);
    return 0;
}

static cJSON *headers_json(const struct soldr_request *r, int b64)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < r->nheaders; i++) {
        const struct req_header *h = &r->headers[i];
        cJSON *pair = cJSON_CreateArray();
        cJSON *k = json_bytes(req_str(r, h->name), h->name.len, b64);
        cJSON *v = json_bytes(req_str(r, h->value), h->value.len, b64);
        if (!pair || !k || !v) {
            cJSON_Delete(pair), cJSON_Delete(k), cJSON_Delete(v), cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(pair, k);
        cJSON_AddItemToArray(pair, v);
        cJSON_AddItemToArray(arr, pair);
    }
    return arr;
}

int req_to_json(const struct soldr_request *r, struct buf *out)
{
    int hdr_b64 = 0;
    for (size_t i = 0; i < r->nheaders && !hdr_b64; i++)
        hdr_b64 = !clean_utf8(req_str(r, r->headers[i].name), r->headers[i].name.len) ||
                  !clean_utf8(req_str(r, r->headers[i].value), r->headers[i].value.len);
    int tgt_b64 = !clean_utf8(req_str(r, r->target), r->target.len);
    size_t host_len = 0;
    const char *host = req_header_get(r, "host", &host_len, NULL);
    int host_ok = host && clean_utf8(host, host_len);

    cJSON *o = cJSON_CreateObject();
    int bad = !o || add(o, "type", cJSON_CreateString("soldr.request")) ||
              add(o, "v", cJSON_CreateNumber(1)) || add(o, "id", cJSON_CreateString(r->id)) ||
              add(o, "received_at", cJSON_CreateNumber((double)r->received_at)) ||
              add(o, "webhook", cJSON_CreateString(r->webhook)) ||
              add(o, "peer", cJSON_CreateString(r->peer)) ||
              add(o, "host", host_ok ? json_bytes(host, host_len, 0) : cJSON_CreateNull()) ||
              add(o, "method", json_bytes(req_str(r, r->method), r->method.len, 0)) ||
              add(o, tgt_b64 ? "target_b64" : "target",
                  json_bytes(req_str(r, r->target), r->target.len, tgt_b64)) ||
              add(o, hdr_b64 ? "headers_b64" : "headers", headers_json(r, hdr_b64)) ||
              add(o, "body_b64", json_bytes(req_str(r, r->body), r->body.len, 1));
    char *s = bad ? NULL : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return UV_ENOMEM;
    int rc = buf_appends(out, s);
    cJSON_free(s);
    return rc;
}

/* Sets span s from a JSON string, decoding base64 if b64. */
static int set_from_json(struct soldr_request *r, struct span *s, const cJSON *j, int b64)
{
    if (!cJSON_IsString(j))
        return SOLDR_EMALFORMED;
    const char *str = j->valuestring;
    size_t n = strlen(str);
    if (!b64)
        return req_set(r, s, str, n);
    /* mbedtls decodes whole 4-character groups only: a shorter tail would be
     * dropped silently, so a record whose base64 was cut is malformed. */
    if (n % 4 != 0)
        return SOLDR_EMALFORMED;
    size_t olen = 0;
    int brc = mbedtls_base64_decode(NULL, 0, &olen, (const unsigned char *)str, n);
    if (brc == MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
        return SOLDR_EMALFORMED;
    unsigned char *tmp = malloc(olen + 1);
    if (!tmp)
        return UV_ENOMEM;
    int rc = SOLDR_EMALFORMED;
    if (mbedtls_base64_decode(tmp, olen + 1, &olen, (const unsigned char *)str, n) == 0)
        rc = req_set(r, s, tmp, olen);
    free(tmp);
    return rc;
}

static int headers_from_json(struct soldr_request *r, const cJSON *arr, int b64)
{
    if (!cJSON_IsArray(arr))
        return SOLDR_EMALFORMED;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, arr)
    {
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2)
            return SOLDR_EMALFORMED;
        int rc = req_add_header(r);
        struct req_header *h = &r->headers[r->nheaders - 1];
        if (rc || (rc = set_from_json(r, &h->name, cJSON_GetArrayItem(pair, 0), b64)) ||
            (rc = set_from_json(r, &h->value, cJSON_GetArrayItem(pair, 1), b64)))
            return rc;
        if (h->name.len == 0)
            return SOLDR_EMALFORMED;
    }
    return 0;
}

static int copy_str(char *dst, size_t cap, const cJSON *j)
{
    if (!cJSON_IsString(j) || strlen(j->valuestring) >= cap)
        return SOLDR_EMALFORMED;
    strncpy(dst, j->valuestring, cap);
    return 0;
}

int req_from_json(struct soldr_request *r, const char *line, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!o)
        return SOLDR_EMALFORMED;
    int rc = SOLDR_EMALFORMED;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "received_at");
    const cJSON *tgt = cJSON_GetObjectItemCaseSensitive(o, "target");
    const cJSON *tgt64 = cJSON_GetObjectItemCaseSensitive(o, "target_b64");
    const cJSON *hdr = cJSON_GetObjectItemCaseSensitive(o, "headers");
    const cJSON *hdr64 = cJSON_GetObjectItemCaseSensitive(o, "headers_b64");
    const cJSON *peer = cJSON_GetObjectItemCaseSensitive(o, "peer");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "soldr.request") != 0 ||
        !cJSON_IsNumber(at) || at->valuedouble < 0 || at->valuedouble > 1e15)
        goto out;
    if (copy_str(r->id, sizeof r->id, cJSON_GetObjectItemCaseSensitive(o, "id")) ||
        !id_valid(r->id, strlen(r->id)) ||
        copy_str(r->webhook, sizeof r->webhook, cJSON_GetObjectItemCaseSensitive(o, "webhook")) ||
        !route_label_valid(r->webhook))
        goto out;
    if (cJSON_IsString(peer) && copy_str(r->peer, sizeof r->peer, peer))
        goto out;
    r->received_at = (long long)at->valuedouble;
    if ((rc = set_from_json(r, &r->method, cJSON_GetObjectItemCaseSensitive(o, "method"), 0)) ||
        (rc = set_from_json(r, &r->target, tgt ? tgt : tgt64, tgt == NULL)) ||
        (rc = headers_from_json(r, hdr ? hdr : hdr64, hdr == NULL)) ||
        (rc = set_from_json(r, &r->body, cJSON_GetObjectItemCaseSensitive(o, "body_b64"), 1)))
        goto out;
    rc = r->method.len ? 0 : SOLDR_EMALFORMED;
out:
    cJSON_Delete(o);
    return rc;
}
