/* Configuration: every setting is a SOLDR_* environment variable and a
 * --flag, described once in a table (config.c) from which the defaults, the
 * parser and `--help` all come, so the help text cannot drift from the code.
 * Parsed once at start-up, validated, then passed around as const. */
#ifndef SOLDR_CONFIG_H
#define SOLDR_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "common/errors.h"

enum soldr_durability { SOLDR_DURABILITY_FULL = 0, SOLDR_DURABILITY_NORMAL = 1 };

struct soldr_config {
    char data_dir[1024];
    char db_path[1100]; /* derived: <data_dir>/soldr.db */
    char listen[256];
    char domain[256];
    int durability;
    uint64_t max_body;
    uint64_t max_header_size;
    uint64_t max_queue_bytes;
    uint64_t read_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t busy_timeout_ms;
    uint64_t max_connections;
    int log_level;
    uint64_t max_deliveries;
    uint64_t retention_days;
    uint64_t purge_interval_ms;
    uint64_t purge_chunk;
    uint64_t shutdown_grace_ms;
    char mgmt_listen[256];
    char mgmt_secret[512];
    char mgmt_secret_file[1024];
    char mgmt_cert[1024];
    char mgmt_key[1024];
    char ui_dir[1024];
    char smtp_url[1024];
    char alert_from[256];
    char alert_email[256];
    char alert_url[2048];
};

/* Option groups: which subcommands a setting applies to (for --help). */
enum { CFG_SERVE = 1, CFG_DB = 2 };

/* Fills cfg with the defaults, then the environment, then the flags found in
 * argv (which are removed; other arguments, including --flags that are not
 * settings of `groups`, are kept in order for the subcommand, argc updated).
 * On a bad value writes a one-line message naming the setting to err and
 * returns SOLDR_ECONFIG. */
SOLDR_MUST_USE int config_load(struct soldr_config *cfg, int groups, int *argc, char **argv,
                               FILE *err);
/* Prints the settings of `groups` with their variables, flags and defaults. */
void config_print_help(FILE *out, int groups);
/* Prints the settings of `groups` as an EnvironmentFile= for systemd: each
 * one's help as a comment, then "#SOLDR_X=default" (commented out). */
void config_print_env(FILE *out, int groups);
/* Parses "1048576", "64k", "1MiB", "2G" into bytes. */
int config_parse_size(const char *s, uint64_t *out);
/* Parses "250ms", "30s", "5m", "6h", "2d" (a bare number is seconds) into ms. */
int config_parse_duration(const char *s, uint64_t *out);

#endif
