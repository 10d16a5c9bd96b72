/* soldr: parses the command line and wires the tasks together. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "common/log.h"
#include "ingest/ingest.h"

static void usage(FILE *out)
{
    fprintf(out,
            "soldr %s - webhook relay: stores every webhook durably, then forwards it\n"
            "\n"
            "Usage:\n"
            "  soldr serve [settings]            run the relay (ingest on SOLDR_LISTEN)\n"
            "  soldr replay [FILE|-] [settings]  restore request records that soldr wrote to\n"
            "                                    stdout when the database failed\n"
            "  soldr webhook add|list|show|update|rm ...   manage webhooks in the database\n"
            "  soldr purge [--dry-run]           delete what is older than the retention now\n"
            "  soldr stats                       counters per webhook and day (outlive purges)\n"
            "  soldr ui --api URL [...]          the management UI in a process of its own\n"
            "  soldr --help | <command> --help\n"
            "  soldr --version\n"
            "\n",
            SOLDR_VERSION);
    config_print_help(out, CFG_SERVE | CFG_DB);
}

/* mkdir -p: creates dir and its missing parents (mode 0700). */
static int make_dirs(const char *dir)
{
    char path[sizeof(((struct soldr_config *)0)->data_dir)];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int cmd_open_store(const struct soldr_config *cfg, struct store **st, int fallback_fd)
{
    if (make_dirs(cfg->data_dir) != 0) {
        fprintf(stderr, "soldr: cannot create data directory %s: %s\n", cfg->data_dir,
                strerror(errno));
        return 1;
    }
    struct store_opts so = {
        .path = cfg->db_path,
        .durability = cfg->durability,
        .busy_timeout_ms = cfg->busy_timeout_ms,
        .max_queue_bytes = cfg->max_queue_bytes,
        .fallback_fd = fallback_fd,
    };
    int rc = store_open(st, &so);
    if (rc) {
        fprintf(stderr, "soldr: cannot open database %s: %s\n", cfg->db_path, soldr_strerror(rc));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* A closed stdout (pipe) must surface as a write error, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("soldr %s (schema %d)\n", SOLDR_VERSION, store_schema_version());
        return 0;
    }
    const char *sub = argv[1];
    int groups;
    int (*run)(const struct soldr_config *, int, char **);
    if (strcmp(sub, "serve") == 0)
        groups = CFG_SERVE | CFG_DB, run = cmd_serve;
    else if (strcmp(sub, "replay") == 0)
        groups = CFG_DB, run = cmd_replay;
    else if (strcmp(sub, "webhook") == 0)
        groups = CFG_DB, run = cmd_webhook;
    else if (strcmp(sub, "purge") == 0)
        groups = CFG_DB, run = cmd_purge;
    else if (strcmp(sub, "stats") == 0)
        groups = CFG_DB, run = cmd_stats;
    else if (strcmp(sub, "ui") == 0)
        groups = 0, run = cmd_ui;
    else {
        fprintf(stderr, "soldr: unknown command '%s' (see soldr --help)\n", sub);
        return 2;
    }
    struct soldr_config cfg;
    argc--, argv++; /* argv[0] is now the subcommand */
    if (config_load(&cfg, groups, &argc, argv, stderr))
        return 2;
    log_set_level((enum log_level)cfg.log_level);
    return run(&cfg, argc, argv);
}
