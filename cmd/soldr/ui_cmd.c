/* soldr ui: the management UI in a process of its own (src/uiproxy). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "uiproxy/uiproxy.h"

static void ui_usage(FILE *out)
{
    fprintf(out, "Usage: soldr ui --api URL [--secret-file FILE] [--listen ADDR]\n"
                 "                [--api-ca FILE | --insecure]\n"
                 "Serves the management UI apart from soldr serve, forwarding its API calls to\n"
                 "the management API at URL (e.g. https://soldr.example:8443).\n"
                 "  --secret-file FILE  add this secret (first line) to every API call; without\n"
                 "                      it the secret typed at sign-in is passed through\n"
                 "  --listen ADDR       where the UI listens [127.0.0.1:8888]; it holds the\n"
                 "                      secret, so keep it on loopback\n"
                 "  --api-ca FILE       trust the API's certificate in this PEM file (its\n"
                 "                      self-signed mgmt-cert.pem, for instance)\n"
                 "  --insecure          do not verify the API's certificate at all\n\n");
}

int cmd_ui(const struct soldr_config *cfg, int argc, char **argv)
{
    struct uiproxy_opts o = {.listen = "127.0.0.1:8888"};
    char secret[512] = "";
    const char *secret_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            ui_usage(stdout);
            return 0;
        } else if (strcmp(a, "--insecure") == 0) {
            o.insecure = 1;
        } else if (v && strcmp(a, "--api") == 0) {
            o.api = v, i++;
        } else if (v && strcmp(a, "--listen") == 0) {
            o.listen = v, i++;
        } else if (v && strcmp(a, "--secret-file") == 0) {
            secret_file = v, i++;
        } else if (v && strcmp(a, "--api-ca") == 0) {
            o.cafile = v, i++;
        } else {
            fprintf(stderr, "soldr ui: unexpected argument '%s' (see soldr ui --help)\n", a);
            return 2;
        }
    }
    if (!o.api || (strncmp(o.api, "https://", 8) != 0 && strncmp(o.api, "http://", 7) != 0)) {
        fprintf(stderr, "soldr ui: --api https://HOST:PORT is required\n");
        return 2;
    }
    if (secret_file) {
        FILE *f = fopen(secret_file, "r");
        size_t n = f ? fread(secret, 1, sizeof secret - 1, f) : 0;
        if (f)
            fclose(f);
        secret[n] = '\0';
        secret[strcspn(secret, "\r\n")] = '\0';
        if (strlen(secret) < 32) {
            fprintf(stderr, "soldr ui: cannot read a secret of 32+ characters from %s\n",
                    secret_file);
            return 2;
        }
        o.secret = secret;
    }
    int rc = uiproxy_run(&o, cfg);
    memset(secret, 0, sizeof secret);
    return rc;
}
