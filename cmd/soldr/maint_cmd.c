/* Maintenance commands that work straight on the database: soldr purge and
 * soldr stats. Safe while soldr serve runs (WAL; short transactions). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common/log.h"
#include "store/purge.h"

int cmd_purge(const struct soldr_config *cfg, int argc, char **argv)
{
    int dry = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry = 1;
        } else if (strcmp(argv[i], "--help") == 0) {
            printf("Usage: soldr purge [--dry-run] [settings]\n"
                   "Deletes requests and attempts older than SOLDR_RETENTION_DAYS now, in chunks\n"
                   "of SOLDR_PURGE_CHUNK rows (soldr serve also does this every\n"
                   "SOLDR_PURGE_INTERVAL). --dry-run only counts what would go.\n\n");
            config_print_help(stdout, CFG_DB);
            return 0;
        } else {
            fprintf(stderr, "soldr purge: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    struct store *st;
    if (cmd_open_store(cfg, &st, -1))
        return 1;
    long long cutoff = time_now_ms() - (long long)cfg->retention_days * 86400000LL;
    struct store_purge_counts c;
    int rc = store_purge_now(st, cutoff, (int)cfg->purge_chunk, dry, &c);
    store_close(st);
    if (rc) {
        fprintf(stderr, "soldr purge: %s\n", soldr_strerror(rc));
        return 1;
    }
    char when[25];
    time_format_ms(cutoff, when);
    printf("%s %lld requests (%lld never delivered) and %lld attempts older than %s "
           "(%llu days)\n",
           dry ? "would delete" : "deleted", c.requests, c.undelivered, c.attempts, when,
           (unsigned long long)cfg->retention_days);
    return 0;
}

struct totals {
    long long n[7];
    char last[SOLDR_LABEL_MAX + 1];
    int rows;
};

static void print_row(const char *name, const long long *n)
{
    printf("%-24s %10lld %10lld %10lld %10lld %10lld %10lld %12lld\n", name, n[0], n[1], n[2], n[3],
           n[4], n[5], n[6]);
}

static int add_row(void *arg, const struct store_rollup_row *r)
{
    struct totals *t = arg;
    long long v[7] = {r->received, r->delivered,         r->failed, r->retried, r->orphaned,
                      r->purged,   r->purged_undelivered};
    char day[25], name[64];
    time_format_ms(r->day * 86400000LL, day);
    snprintf(name, sizeof name, "%s %.10s", r->webhook, day);
    print_row(name, v);
    for (int i = 0; i < 7; i++)
        t->n[i] += v[i];
    t->rows++;
    return 0;
}

int cmd_stats(const struct soldr_config *cfg, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("Usage: soldr stats [settings]\n"
               "Prints the lasting counters per webhook and UTC day (they survive the purge)\n"
               "and their totals.\n\n");
        config_print_help(stdout, CFG_DB);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "soldr stats: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    struct store *st;
    if (cmd_open_store(cfg, &st, -1))
        return 1;
    printf("%-24s %10s %10s %10s %10s %10s %10s %12s\n", "webhook day", "received", "delivered",
           "failed", "retried", "orphaned", "purged", "purged_undel");
    struct totals t;
    memset(&t, 0, sizeof t);
    int rc = store_rollups(st, add_row, &t);
    store_close(st);
    if (rc) {
        fprintf(stderr, "soldr stats: %s\n", soldr_strerror(rc));
        return 1;
    }
    print_row("total", t.n);
    return 0;
}
