#include "processor/outbound.h"

#include <curl/curl.h>
#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int outbound_url(const char *dest, const char *target, size_t tlen, struct buf *out)
{
    const char *scheme_end = strstr(dest, "://");
    const char *auth = scheme_end ? scheme_end + 3 : dest;
    size_t auth_len = strcspn(auth, "/?#");
    const char *dpath = auth + auth_len;
    size_t dpath_len = strcspn(dpath, "?#");
    const char *dquery = dpath[dpath_len] == '?' ? dpath + dpath_len + 1 : NULL;
    size_t dquery_len = dquery ? strcspn(dquery, "#") : 0;

    const char *tq = memchr(target, '?', tlen);
    size_t tpath_len = tq ? (size_t)(tq - target) : tlen;
    const char *tquery = tq ? tq + 1 : NULL;
    size_t tquery_len = tq ? tlen - tpath_len - 1 : 0;

    while (dpath_len > 0 && dpath[dpath_len - 1] == '/')
        dpath_len--;
    if (tpath_len == 1 && target[0] == '/')
        tpath_len = 0;
    int rc = buf_append(out, dest, (size_t)(dpath - dest));
    if (!rc)
        rc = buf_append(out, dpath, dpath_len);
    if (!rc && tpath_len && target[0] != '/')
        rc = buf_append(out, "/", 1);
    if (!rc)
        rc = buf_append(out, target, tpath_len);
    if (!rc && dpath_len == 0 && tpath_len == 0)
        rc = buf_append(out, "/", 1);
    if (!rc && (dquery_len || tquery_len))
        rc = buf_append(out, "?", 1);
    if (!rc)
        rc = buf_append(out, dquery ? dquery : "", dquery_len);
    if (!rc && dquery_len && tquery_len)
        rc = buf_append(out, "&", 1);
    if (!rc)
        rc = buf_append(out, tquery ? tquery : "", tquery_len);
    return rc;
}

int outbound_forward_header(const char *name, size_t len)
{
    static const char *const drop[] = {
        "host", "content-length", "connection",        "keep-alive", "proxy-connection",
        "te",   "trailer",        "transfer-encoding", "upgrade",    "expect",
        NULL};
    if (len >= 8 && strncasecmp(name, "webhook-", 8) == 0)
        return 0;
    for (int i = 0; drop[i]; i++)
        if (strlen(drop[i]) == len && strncasecmp(name, drop[i], len) == 0)
            return 0;
    return 1;
}

int outbound_sign(const char *secret, const char *id, long long ts, const void *body, size_t len,
                  char *out, size_t cap)
{
    unsigned char key[256];
    size_t klen = 0;
    const char *enc = strncmp(secret, "whsec_", 6) == 0 ? secret + 6 : NULL;
    if (!enc || mbedtls_base64_decode(key, sizeof key, &klen, (const unsigned char *)enc,
                                      strlen(enc)) != 0) {
        klen = strlen(secret) < sizeof key ? strlen(secret) : sizeof key;
        memcpy(key, secret, klen);
    }
    char prefix[96];
    int pl = snprintf(prefix, sizeof prefix, "%s.%lld.", id, ts);
    unsigned char mac[32];
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    int rc = mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (!rc)
        rc = mbedtls_md_hmac_starts(&ctx, key, klen);
    if (!rc)
        rc = mbedtls_md_hmac_update(&ctx, (const unsigned char *)prefix, (size_t)pl);
    if (!rc)
        rc = mbedtls_md_hmac_update(&ctx, body, len);
    if (!rc)
        rc = mbedtls_md_hmac_finish(&ctx, mac);
    mbedtls_md_free(&ctx);
    if (rc || cap < 4)
        return SOLDR_ETOOBIG;
    memcpy(out, "v1,", 3);
    size_t olen;
    if (mbedtls_base64_encode((unsigned char *)out + 3, cap - 3, &olen, mac, sizeof mac) != 0)
        return SOLDR_ETOOBIG;
    return 0;
}

uint64_t outbound_backoff_ms(uint32_t n, uint64_t base, uint64_t cap, uint64_t rnd)
{
    uint64_t d = base;
    for (uint32_t i = 1; i < n && d < cap; i++)
        d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
    if (d > cap)
        d = cap;
    uint64_t half = d / 2;
    return half + rnd % (d - half + 1);
}

long long outbound_retry_after(const char *v, long long now_s)
{
    if (!v || !*v)
        return -1;
    char *end;
    long long s = strtoll(v, &end, 10);
    if (end != v && *end == '\0')
        return s < 0 ? -1 : s;
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return -1;
    return t > now_s ? t - now_s : 0;
}
