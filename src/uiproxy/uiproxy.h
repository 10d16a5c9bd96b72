/* uiproxy: `soldr ui` — the management UI served by a process of its own,
 * apart from soldr serve. It serves the same UI files and forwards /api/v1
 * and /metrics calls to the management API, adding the shared secret itself
 * when it holds one (or passing on the one the user typed at sign-in).
 * Because it may hold the secret it listens on loopback unless told
 * otherwise, and says so. Plain HTTP on loopback; HTTPS to the API. */
#ifndef SOLDR_UIPROXY_H
#define SOLDR_UIPROXY_H

#include "common/config.h"

struct uiproxy_opts {
    const char *api;    /* https://host:8443 */
    const char *listen; /* 127.0.0.1:8888 */
    const char *secret; /* NULL: pass the browser's Authorization through */
    const char *cafile; /* trust this PEM (the API's self-signed cert); NULL: system CAs */
    int insecure;       /* do not verify the API's certificate at all */
};

/* Runs until SIGINT/SIGTERM; returns the exit status. */
int uiproxy_run(const struct uiproxy_opts *o, const struct soldr_config *cfg);

#endif
