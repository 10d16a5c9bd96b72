#include "common/route.h"

#include <string.h>

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

size_t route_label(const char *host, size_t n, const char *domain, char out[SOLDR_LABEL_MAX + 1])
{
    /* Strip the port: the last ':' followed by digits only. IPv6 literals never match a domain. */
    for (size_t i = n; i > 0; i--) {
        char c = host[i - 1];
        if (c == ':') {
            n = i - 1;
            break;
        }
        if (c < '0' || c > '9')
            break;
    }
    if (n > 0 && host[n - 1] == '.')
        n--;
    size_t dl = strlen(domain);
    if (dl == 0 || n < dl + 2)
        return 0;
    size_t label_len = n - dl - 1;
    if (host[label_len] != '.' || label_len > SOLDR_LABEL_MAX)
        return 0;
    for (size_t i = 0; i < dl; i++)
        if (lower(host[label_len + 1 + i]) != domain[i])
            return 0;
    for (size_t i = 0; i < label_len; i++) {
        char c = lower(host[i]);
        if (!label_char(c))
            return 0;
        out[i] = c;
    }
    out[label_len] = '\0';
    return label_len;
}

int route_label_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SOLDR_LABEL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!label_char(s[i]))
            return 0;
    return 1;
}
