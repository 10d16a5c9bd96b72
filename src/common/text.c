#include "common/text.h"

#include <mbedtls/base64.h>
#include <stdlib.h>
#include <uv.h>

int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) {
            if (c == 0)
                return 0;
            p++;
            continue;
        }
        size_t k;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf)
            k = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3, cp = c & 0x07;
        else
            return 0;
        if ((size_t)(e - p) <= k)
            return 0;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += k + 1;
    }
    return 1;
}

char *b64_encode(const void *p, size_t n)
{
    size_t olen = 0;
    mbedtls_base64_encode(NULL, 0, &olen, p, n); /* olen: the size needed, NUL included */
    unsigned char *out = malloc(olen + 1);
    if (!out)
        return NULL;
    if (mbedtls_base64_encode(out, olen + 1, &olen, p, n) != 0) {
        free(out);
        return NULL;
    }
    out[olen] = '\0';
    return (char *)out;
}

int b64_decode(const char *s, size_t n, struct buf *out)
{
    size_t olen = 0;
    const unsigned char *in = (const unsigned char *)s;
    if (mbedtls_base64_decode(NULL, 0, &olen, in, n) == MBEDTLS_ERR_BASE64_INVALID_CHARACTER)
        return SOLDR_EMALFORMED;
    if (olen == 0)
        return 0;
    unsigned char *tmp = malloc(olen);
    if (!tmp)
        return UV_ENOMEM;
    int rc = mbedtls_base64_decode(tmp, olen, &olen, in, n) == 0 ? 0 : SOLDR_EMALFORMED;
    if (!rc)
        rc = buf_append(out, tmp, olen);
    free(tmp);
    return rc;
}
