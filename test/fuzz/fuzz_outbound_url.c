/* fuzz_outbound_url: the delivery URL (src/processor/outbound.c).
 *
 * Input: a destination, a newline, a request target. The destination is
 * used only if store_webhook_validate accepts it (as every stored one is);
 * the target only if it holds no space or control byte (what ingest's
 * parser and the mgmt edit route let through). Checks that the target can
 * never move a delivery elsewhere: when curl parses both the destination and
 * the URL outbound_url builds, they have the same scheme, host and port (and
 * user). */
#include <curl/curl.h>
#include <string.h>

#include "fuzz_common.h"
#include "processor/outbound.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Part `what` of url as curl sees it, or NULL if curl refuses the URL (then
 * *ok = 0). The caller frees with curl_free. */
static char *part(CURLU *u, CURLUPart what)
{
    char *v = NULL;
    if (curl_url_get(u, what, &v, what == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0) != CURLUE_OK)
        return NULL;
    return v;
}

static void same_part(CURLU *a, CURLU *b, CURLUPart what, const char *name, const char *dest,
                      const char *url)
{
    char *va = part(a, what), *vb = part(b, what);
    FUZZ_CHECK((!va && !vb) || (va && vb && strcmp(va, vb) == 0),
               "the target changed the %s: destination %s (%s) became %s (%s)", name, dest,
               va ? va : "-", url, vb ? vb : "-");
    curl_free(va);
    curl_free(vb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl)
        return 0;
    struct soldr_webhook wh;
    store_webhook_defaults(&wh);
    size_t dl = (size_t)(nl - data);
    if (dl >= sizeof wh.destination)
        return 0;
    memcpy(wh.destination, data, dl);
    wh.destination[dl] = '\0';
    snprintf(wh.id, sizeof wh.id, "w");
    const char *field, *why;
    if (store_webhook_validate(&wh, &field, &why) != 0)
        return 0;
    const char *target = (const char *)nl + 1;
    size_t tl = size - dl - 1;
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)target[i] <= 0x20 || target[i] == 0x7f)
            return 0;
    struct buf url;
    buf_init(&url, (size_t)-1);
    FUZZ_CHECK(outbound_url(wh.destination, target, tl, &url) == 0, "outbound_url failed");
    CURLU *a = curl_url(), *b = curl_url();
    FUZZ_CHECK(a && b, "curl_url");
    if (curl_url_set(a, CURLUPART_URL, wh.destination, 0) == CURLUE_OK &&
        curl_url_set(b, CURLUPART_URL, url.data, 0) == CURLUE_OK) {
        same_part(a, b, CURLUPART_SCHEME, "scheme", wh.destination, url.data);
        same_part(a, b, CURLUPART_HOST, "host", wh.destination, url.data);
        same_part(a, b, CURLUPART_PORT, "port", wh.destination, url.data);
        same_part(a, b, CURLUPART_USER, "user", wh.destination, url.data);
    }
    curl_url_cleanup(a);
    curl_url_cleanup(b);
    buf_free(&url);
    return 0;
}
