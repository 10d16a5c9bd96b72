/* soldr webhook add|list|show|update|rm: webhook rows straight in the database,
 * so an operator can script set-up without the management API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void webhook_usage(FILE *out)
{
    fprintf(out, "Usage:\n"
                 "  soldr webhook add LABEL URL [options]\n"
                 "  soldr webhook list\n"
                 "  soldr webhook show LABEL\n"
                 "  soldr webhook update LABEL [--destination URL] [options]\n"
                 "  soldr webhook rm LABEL\n"
                 "LABEL is the subdomain ([a-z0-9-]{1,63}): requests to LABEL.<SOLDR_DOMAIN>\n"
                 "are forwarded to URL (http:// or https://).\n"
                 "Options (defaults in brackets):\n"
                 "  --active | --inactive    deliver, or mark new requests orphaned [active]\n"
                 "  --max-attempts N         attempts before a request fails [10]\n"
                 "  --timeout DUR            per attempt [30s]\n"
                 "  --backoff-base DUR       first retry delay; doubles each attempt [30s]\n"
                 "  --backoff-cap DUR        largest retry delay [6h]\n"
                 "  --max-concurrency N      deliveries in flight to this webhook [4]\n"
                 "  --signing-secret S       whsec_<base64>: sign deliveries (Standard Webhooks);\n"
                 "                           '' stops signing\n"
                 "  --alert-email ADDR       alert recipient [SOLDR_ALERT_EMAIL]\n"
                 "  --alert-url URL          alert JSON POST target [SOLDR_ALERT_URL]\n"
                 "Retry delays use equal jitter: attempt n waits between d/2 and d,\n"
                 "d = min(cap, base * 2^(n-1)).\n\n");
    config_print_help(out, CFG_DB);
}

static int parse_u32(const char *flag, const char *v, int duration, uint32_t lo, uint32_t hi,
                     uint32_t *out)
{
    uint64_t n;
    char *end;
    int bad = 0;
    if (duration) {
        bad = config_parse_duration(v, &n) != 0;
    } else {
        n = strtoull(v, &end, 10);
        bad = *v == '\0' || *end != '\0' || *v == '-';
    }
    if (bad || n < lo || n > hi) {
        fprintf(stderr, "soldr webhook: %s must be %s%u..%u%s, not '%s'\n", flag,
                duration ? "a duration of " : "", lo, hi, duration ? " ms" : "", v);
        return 2;
    }
    *out = (uint32_t)n;
    return 0;
}

static int set_text(const char *flag, char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap) {
        fprintf(stderr, "soldr webhook: %s is too long\n", flag);
        return 2;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* Applies the setting flags from argv[from..]; --destination only on update. */
static int apply_flags(struct soldr_webhook *wh, int argc, char **argv, int from, int allow_dest)
{
    int rc = 0;
    for (int i = from; i < argc && !rc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--active") == 0) {
            wh->active = 1;
            continue;
        }
        if (strcmp(a, "--inactive") == 0) {
            wh->active = 0;
            continue;
        }
        if (!v) {
            fprintf(stderr, "soldr webhook: %s needs a value (see soldr webhook --help)\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--max-attempts") == 0)
            rc = parse_u32(a, v, 0, 1, 1000, &wh->max_attempts);
        else if (strcmp(a, "--max-concurrency") == 0)
            rc = parse_u32(a, v, 0, 1, 1000, &wh->max_concurrency);
        else if (strcmp(a, "--timeout") == 0)
            rc = parse_u32(a, v, 1, 100, 600000, &wh->timeout_ms);
        else if (strcmp(a, "--backoff-base") == 0)
            rc = parse_u32(a, v, 1, 10, 86400000, &wh->backoff_base_ms);
        else if (strcmp(a, "--backoff-cap") == 0)
            rc = parse_u32(a, v, 1, 10, 7 * 86400000u, &wh->backoff_cap_ms);
        else if (strcmp(a, "--signing-secret") == 0)
            rc = set_text(a, wh->signing_secret, sizeof wh->signing_secret, v);
        else if (strcmp(a, "--alert-email") == 0)
            rc = set_text(a, wh->alert_email, sizeof wh->alert_email, v);
        else if (strcmp(a, "--alert-url") == 0)
            rc = set_text(a, wh->alert_url, sizeof wh->alert_url, v);
        else if (allow_dest && strcmp(a, "--destination") == 0)
            rc = set_text(a, wh->destination, sizeof wh->destination, v);
        else {
            fprintf(stderr, "soldr webhook: unexpected argument '%s' (see soldr webhook --help)\n",
                    a);
            return 2;
        }
    }
    if (rc)
        return rc;
    const char *field, *why;
    if (store_webhook_validate(wh, &field, &why) != 0) {
        fprintf(stderr, "soldr webhook: %s %s\n", field, why);
        return 2;
    }
    return 0;
}

static void print_webhook(const struct soldr_webhook *wh)
{
    printf("id: %s\ndestination: %s\nactive: %s\nmax_attempts: %u\ntimeout_ms: %u\n"
           "backoff_base_ms: %u\nbackoff_cap_ms: %u\nmax_concurrency: %u\nsigned: %s\n"
           "alert_email: %s\nalert_url: %s\nalerted: %s\n",
           wh->id, wh->destination, wh->active ? "yes" : "no", wh->max_attempts, wh->timeout_ms,
           wh->backoff_base_ms, wh->backoff_cap_ms, wh->max_concurrency,
           wh->signing_secret[0] ? "yes" : "no", wh->alert_email, wh->alert_url,
           wh->alerted_at ? "yes" : "no");
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
