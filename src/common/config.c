#include "common/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

enum opt_type { T_STR, T_SIZE, T_DURATION, T_UINT, T_DURABILITY, T_LOGLEVEL };

struct opt {
    const char *env;
    const char *flag;
    enum opt_type type;
    size_t offset;
    size_t size; /* for T_STR */
    const char *def;
    int groups;
    const char *help;
};

#define STR(f)    T_STR, offsetof(struct soldr_config, f), sizeof(((struct soldr_config *)0)->f)
#define NUM(t, f) t, offsetof(struct soldr_config, f), 0

static const struct opt opts[] = {
    {"SOLDR_DATA_DIR", "--data-dir", STR(data_dir), "./soldr-data", CFG_SERVE | CFG_DB,
     "directory of the database (soldr.db); created if missing"},
    {"SOLDR_LISTEN", "--listen", STR(listen), "127.0.0.1:8080", CFG_SERVE,
     "ingest address, host:port (IPv6 as [::1]:8080)"},
    {"SOLDR_DOMAIN", "--domain", STR(domain), "wh.localhost", CFG_SERVE,
     "webhook domain: Host <label>.<domain> goes to webhook <label>"},
    {"SOLDR_DURABILITY", "--durability", NUM(T_DURABILITY, durability), "full", CFG_SERVE | CFG_DB,
     "full: fsync every commit (survives power loss); normal: faster, may lose the "
     "last commits on power loss (not on a crash)"},
    {"SOLDR_MAX_BODY", "--max-body", NUM(T_SIZE, max_body), "1MiB", CFG_SERVE,
     "largest request body accepted; larger gets 413"},
    {"SOLDR_MAX_HEADER_SIZE", "--max-header-size", NUM(T_SIZE, max_header_size), "32KiB", CFG_SERVE,
     "largest request line + header section; larger gets 431"},
    {"SOLDR_MAX_QUEUE", "--max-queue", NUM(T_SIZE, max_queue_bytes), "256MiB", CFG_SERVE,
     "request bytes waiting for the database at most, and as much again for requests "
     "still being received; past either ingest answers 503"},
    {"SOLDR_READ_TIMEOUT", "--read-timeout", NUM(T_DURATION, read_timeout_ms), "30s", CFG_SERVE,
     "time allowed to send one whole request; slower clients get 408"},
    {"SOLDR_IDLE_TIMEOUT", "--idle-timeout", NUM(T_DURATION, idle_timeout_ms), "60s", CFG_SERVE,
     "keep-alive connections idle this long are closed"},
    {"SOLDR_BUSY_TIMEOUT", "--busy-timeout", NUM(T_DURATION, busy_timeout_ms), "5s",
     CFG_SERVE | CFG_DB, "how long a database write waits for a lock before it fails"},
    {"SOLDR_MAX_CONNECTIONS", "--max-connections", NUM(T_UINT, max_connections), "10000", CFG_SERVE,
     "open ingest connections at most; further ones are closed at once"},
    {"SOLDR_MAX_DELIVERIES", "--max-deliveries", NUM(T_UINT, max_deliveries), "256", CFG_SERVE,
     "deliveries in flight at most, over all webhooks (each webhook has its own cap too)"},
    {"SOLDR_SHUTDOWN_GRACE", "--shutdown-grace", NUM(T_DURATION, shutdown_grace_ms), "10s",
     CFG_SERVE,
     "on SIGTERM, how long deliveries in flight may take to finish; the rest are retried "
     "after the restart"},
    {"SOLDR_RETENTION_DAYS", "--retention-days", NUM(T_UINT, retention_days), "30",
     CFG_SERVE | CFG_DB,
     "requests and attempts older than this are deleted (counters in rollups stay)"},
    {"SOLDR_PURGE_INTERVAL", "--purge-interval", NUM(T_DURATION, purge_interval_ms), "5m",
     CFG_SERVE, "how often the purge runs"},
    {"SOLDR_PURGE_CHUNK", "--purge-chunk", NUM(T_UINT, purge_chunk), "500", CFG_SERVE | CFG_DB,
     "rows deleted per purge transaction (ingest commits go between chunks)"},
    {"SOLDR_MGMT_LISTEN", "--mgmt-listen", STR(mgmt_listen), "0.0.0.0:8443", CFG_SERVE,
     "management API and UI address (HTTPS); starts only when a secret is set"},
    {"SOLDR_MGMT_SECRET_FILE", "--mgmt-secret-file", STR(mgmt_secret_file), "", CFG_SERVE,
     "file whose first line is the management secret (32+ characters); works with systemd "
     "LoadCredential="},
    {"SOLDR_MGMT_SECRET", "--mgmt-secret", STR(mgmt_secret), "", CFG_SERVE,
     "the management secret itself (prefer the file: environments leak)"},
    {"SOLDR_MGMT_CERT", "--mgmt-cert", STR(mgmt_cert), "", CFG_SERVE,
     "PEM certificate (chain) of the management port; empty: a self-signed one is made in "
     "the data dir"},
    {"SOLDR_MGMT_KEY", "--mgmt-key", STR(mgmt_key), "", CFG_SERVE,
     "PEM private key of SOLDR_MGMT_CERT"},
    {"SOLDR_UI_DIR", "--ui-dir", STR(ui_dir), "", CFG_SERVE,
     "serve the UI from this directory instead of the copy built into the binary "
     "(development)"},
    {"SOLDR_SMTP_URL", "--smtp-url", STR(smtp_url), "", CFG_SERVE,
     "SMTP server for alert e-mail, e.g. smtp://127.0.0.1:25 or smtps://user:pass@host "
     "(empty: no e-mail)"},
    {"SOLDR_ALERT_FROM", "--alert-from", STR(alert_from), "soldr@localhost", CFG_SERVE,
     "sender address of alert e-mail"},
    {"SOLDR_ALERT_EMAIL", "--alert-email", STR(alert_email), "", CFG_SERVE,
     "alert e-mail recipient for webhooks that name none"},
    {"SOLDR_ALERT_URL", "--alert-url", STR(alert_url), "", CFG_SERVE,
     "URL that gets alerts as a JSON POST, for webhooks that name none"},
    {"SOLDR_LOG_LEVEL", "--log-level", NUM(T_LOGLEVEL, log_level), "info", CFG_SERVE | CFG_DB,
     "debug, info, warn or error (logs are JSON lines on stderr)"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

int config_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return SOLDR_ECONFIG; /* strtoull would skip blanks and wrap "-1" around */
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return SOLDR_ECONFIG;
    static const struct {
        const char *suffix;
        uint64_t mul;
    } units[] = {{"", 1},           {"b", 1},           {"k", 1024},        {"kb", 1024},
                 {"kib", 1024},     {"m", 1 << 20},     {"mb", 1 << 20},    {"mib", 1 << 20},
                 {"g", 1ULL << 30}, {"gb", 1ULL << 30}, {"gib", 1ULL << 30}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mul)
                return SOLDR_ECONFIG;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return SOLDR_ECONFIG;
}

int config_parse_duration(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return SOLDR_ECONFIG; /* strtoull would skip blanks and wrap "-1" around */
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return SOLDR_ECONFIG;
    static const struct {
        const char *suffix;
        uint64_t mul;
    } units[] = {{"", 1000},       {"ms", 1},          {"s", 1000},
                 {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mul)
                return SOLDR_ECONFIG;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return SOLDR_ECONFIG;
}

static int set_opt(struct soldr_config *cfg, const struct opt *o, const char *v)
{
    char *field = (char *)cfg + o->offset;
    uint64_t n;
    int lvl;
    switch (o->type) {
    case T_STR:
        /* Settings whose default is empty may be set empty (off); others not. */
        if (strlen(v) >= o->size || (*v == '\0' && o->def[0] != '\0'))
            return SOLDR_ECONFIG;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case T_SIZE:
        return config_parse_size(v, (uint64_t *)(void *)field);
    case T_DURATION:
        return config_parse_duration(v, (uint64_t *)(void *)field);
    case T_UINT:
        if (config_parse_size(v, &n) || strpbrk(v, "kKmMgGbB"))
            return SOLDR_ECONFIG;
        *(uint64_t *)(void *)field = n;
        return 0;
    case T_DURABILITY:
        if (strcmp(v, "full") == 0)
            *(int *)(void *)field = SOLDR_DURABILITY_FULL;
        else if (strcmp(v, "normal") == 0)
            *(int *)(void *)field = SOLDR_DURABILITY_NORMAL;
        else
            return SOLDR_ECONFIG;
        return 0;
    case T_LOGLEVEL:
        if ((lvl = log_level_parse(v)) < 0)
            return SOLDR_ECONFIG;
        *(int *)(void *)field = lvl;
        return 0;
    }
    return SOLDR_ECONFIG;
}

static int validate(struct soldr_config *cfg, FILE *err)
{
    for (char *p = cfg->domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const char *bad = NULL;
    if (cfg->max_body == 0 || cfg->max_body > (1ULL << 30))
        bad = "SOLDR_MAX_BODY must be between 1 byte and 1GiB";
    else if (cfg->max_header_size < 1024 || cfg->max_header_size > (1 << 20))
        bad = "SOLDR_MAX_HEADER_SIZE must be between 1KiB and 1MiB";
    else if (cfg->max_connections == 0 || cfg->max_connections > 1000000)
        bad = "SOLDR_MAX_CONNECTIONS must be between 1 and 1000000";
    else if (cfg->read_timeout_ms == 0 || cfg->idle_timeout_ms == 0)
        bad = "timeouts must be greater than zero";
    else if (cfg->retention_days == 0 || cfg->retention_days > 36500)
        bad = "SOLDR_RETENTION_DAYS must be between 1 and 36500";
    else if (cfg->purge_chunk == 0 || cfg->purge_chunk > 1000000)
        bad = "SOLDR_PURGE_CHUNK must be between 1 and 1000000";
    else if (cfg->purge_interval_ms == 0)
        bad = "SOLDR_PURGE_INTERVAL must be greater than zero";
    else if (cfg->max_deliveries == 0 || cfg->max_deliveries > 100000)
        bad = "SOLDR_MAX_DELIVERIES must be between 1 and 100000";
    else if (cfg->domain[0] == '\0' || cfg->domain[0] == '.')
        bad = "SOLDR_DOMAIN must be a domain name such as wh.example.com";
    if (bad) {
        fprintf(err, "soldr: %s\n", bad);
        return SOLDR_ECONFIG;
    }
    int n = snprintf(cfg->db_path, sizeof cfg->db_path, "%s/soldr.db", cfg->data_dir);
    return n > 0 && (size_t)n < sizeof cfg->db_path ? 0 : SOLDR_ECONFIG;
}

int config_load(struct soldr_config *cfg, int groups, int *argc, char **argv, FILE *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++)
        if (set_opt(cfg, &opts[i], opts[i].def))
            return SOLDR_ECONFIG; /* a bad default is a bug */
    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v && set_opt(cfg, &opts[i], v)) {
            fprintf(err, "soldr: invalid value '%s' for %s (%s)\n", v, opts[i].env, opts[i].help);
            return SOLDR_ECONFIG;
        }
    }
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0' || strcmp(a, "--help") == 0) {
            argv[out++] = a;
            continue;
        }
        char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const struct opt *o = NULL;
        for (size_t k = 0; k < NOPTS && !o; k++)
            if ((opts[k].groups & groups) && strlen(opts[k].flag) == nl &&
                strncmp(opts[k].flag, a, nl) == 0)
                o = &opts[k];
        if (!o) {
            argv[out++] = a; /* left for the subcommand's own flags */
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < *argc ? argv[++i] : NULL);
        if (!v || set_opt(cfg, o, v)) {
            fprintf(err, "soldr: invalid value '%s' for %s (%s)\n", v ? v : "", o->flag, o->help);
            return SOLDR_ECONFIG;
        }
    }
    *argc = out;
    argv[out] = NULL;
    return validate(cfg, err);
}

void config_print_help(FILE *out, int groups)
{
    fprintf(out, "Settings (environment variable, flag, default):\n");
    for (size_t i = 0; i < NOPTS; i++) {
        if (!(opts[i].groups & groups))
            continue;
        fprintf(out, "  %-22s %-19s [%s]\n      %s\n", opts[i].env, opts[i].flag, opts[i].def,
                opts[i].help);
    }
    fprintf(out, "Sizes take k/M/G (KiB/MiB/GiB) suffixes; durations ms/s/m/h/d "
                 "(a bare number is seconds).\n");
}

void config_print_env(FILE *out, int groups)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].groups & groups)
            fprintf(out, "\n# %s\n#%s=%s\n", opts[i].help, opts[i].env, opts[i].def);
}
