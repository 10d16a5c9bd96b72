/* soldr webhook add|list|show|update|rm: webhook rows straight in the database,
 * so an operator can script set-up without the management API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void webhook_usage(FILE *out)
{
    fprintf(out, "Usage:\n"
                 "  soldr webhook add LABEL URL [--max-attempts N] [--inactive]\n"
                 "  soldr webhook list\n"
                 "  soldr webhook show LABEL\n"
                 "  soldr webhook update LABEL [--destination URL] [--max-attempts N]\n"
                 "                             [--active | --inactive]\n"
                 "  soldr webhook rm LABEL\n"
                 "LABEL is the subdomain ([a-z0-9-]{1,63}): requests to LABEL.<SOLDR_DOMAIN>\n"
                 "are forwarded to URL (http:// or https://). Defaults: active, 10 attempts.\n\n");
    config_print_help(out, CFG_DB);
}

static int valid_url(const char *u)
{
    size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
    if (!skip || u[skip] == '\0' || u[skip] == '/' || strlen(u) >= 2048)
        return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

/* Applies --destination/--max-attempts/--active/--inactive from argv[from..]. */
static int apply_flags(struct soldr_webhook *wh, int argc, char **argv, int from, int allow_dest)
{
    for (int i = from; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--active") == 0) {
            wh->active = 1;
        } else if (strcmp(a, "--inactive") == 0) {
            wh->active = 0;
        } else if (strcmp(a, "--max-attempts") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000) {
                fprintf(stderr, "soldr webhook: --max-attempts must be 1..1000, not '%s'\n",
                        argv[i]);
                return 2;
            }
            wh->max_attempts = (uint32_t)v;
        } else if (allow_dest && strcmp(a, "--destination") == 0 && i + 1 < argc) {
            snprintf(wh->destination, sizeof wh->destination, "%s", argv[++i]);
        } else {
            fprintf(stderr, "soldr webhook: unexpected argument '%s' (see soldr webhook --help)\n",
                    a);
            return 2;
        }
    }
    if (!valid_url(wh->destination)) {
        fprintf(stderr, "soldr webhook: destination must be an http:// or https:// URL, not '%s'\n",
                wh->destination);
        return 2;
    }
    return 0;
}

static void print_webhook(const struct soldr_webhook *wh)
{
    printf("id: %s\ndestination: %s\nactive: %s\nmax_attempts: %u\n", wh->id, wh->destination,
           wh->active ? "yes" : "no", wh->max_attempts);
}

static int print_row(void *arg, const struct soldr_webhook *wh)
{
    (void)arg;
    printf("%s\t%s\t%s\tmax_attempts=%u\n", wh->id, wh->destination,
           wh->active ? "active" : "inactive", wh->max_attempts);
    return 0;
}

static int report(int rc, const char *label)
{
    if (rc == SOLDR_ENOTFOUND)
        fprintf(stderr, "soldr webhook: no webhook '%s'\n", label);
    else if (rc == SOLDR_EEXIST)
        fprintf(stderr, "soldr webhook: webhook '%s' exists already (use update)\n", label);
    else if (rc)
        fprintf(stderr, "soldr webhook: %s\n", soldr_strerror(rc));
    return rc ? 1 : 0;
}

static int run(struct store *st, int argc, char **argv)
{
    const char *verb = argv[1];
    if (strcmp(verb, "list") == 0 && argc == 2)
        return report(store_webhook_list(st, print_row, NULL), "");
    if (argc < 3) {
        webhook_usage(stderr);
        return 2;
    }
    const char *label = argv[2];
    if (!route_label_valid(label)) {
        fprintf(stderr, "soldr webhook: '%s' is not a valid label ([a-z0-9-]{1,63})\n", label);
        return 2;
    }
    struct soldr_webhook wh;
    store_webhook_defaults(&wh);
    snprintf(wh.id, sizeof wh.id, "%s", label);
    int rc;
    if (strcmp(verb, "add") == 0 && argc >= 4) {
        snprintf(wh.destination, sizeof wh.destination, "%s", argv[3]);
        if ((rc = apply_flags(&wh, argc, argv, 4, 0)))
            return rc;
        if ((rc = report(store_webhook_insert(st, &wh), label)) == 0)
            print_webhook(&wh);
        return rc;
    }
    if (strcmp(verb, "update") == 0) {
        if ((rc = report(store_webhook_get(st, label, &wh), label)))
            return rc;
        if ((rc = apply_flags(&wh, argc, argv, 3, 1)))
            return rc;
        if ((rc = report(store_webhook_update(st, &wh), label)) == 0)
            print_webhook(&wh);
        return rc;
    }
    if (strcmp(verb, "show") == 0 && argc == 3) {
        if ((rc = report(store_webhook_get(st, label, &wh), label)) == 0)
            print_webhook(&wh);
        return rc;
    }
    if (strcmp(verb, "rm") == 0 && argc == 3)
        return report(store_webhook_delete(st, label), label);
    webhook_usage(stderr);
    return 2;
}

int cmd_webhook(const struct soldr_config *cfg, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        webhook_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct store *st;
    if (cmd_open_store(cfg, &st, -1))
        return 1;
    int rc = run(st, argc, argv);
    store_close(st);
    return rc;
}
