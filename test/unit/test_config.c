/* Unit tests for src/common: buf, route, id, config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/id.h"
#include "common/log.h"
#include "common/route.h"

/* ---- config: sizes and durations -------------------------------------------- */

static void config_parse_size_units(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t want;
    } ok[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"10b", 10},
        {"64k", 64 * 1024},
        {"64K", 64 * 1024},
        {"64kb", 64 * 1024},
        {"64KiB", 64 * 1024},
        {"1m", 1 << 20},
        {"1MiB", 1 << 20},
        {"1MB", 1 << 20},
        {"2G", 2ULL << 30},
        {"2gib", 2ULL << 30},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183G", 17179869183ULL << 30}, /* the largest that fits */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 12345;
        int rc = config_parse_size(ok[i].s, &v);
        if (rc != 0 || v != ok[i].want)
            fail_msg("config_parse_size(\"%s\") = %d, %llu; want 0, %llu", ok[i].s, rc,
                     (unsigned long long)v, (unsigned long long)ok[i].want);
    }
}

static void config_parse_size_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "k",
        "-1",
        "1.5M",
        "1 M",
        "1T",
        "1kk",
        "1MiBs",
        "abc",
        "0x10",
        "1e3",
        "1M ",
        "M1",
        " -1",
        " -1b",
        "\t-1",
        "+-1",
        "18446744073709551616",     /* > UINT64_MAX */
        "17179869184G",             /* 2^64 bytes */
        "18014398509481984k",       /* 2^64 bytes */
        "99999999999999999999999G", /* strtoull overflow */
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        int rc = config_parse_size(bad[i], &v);
        if (rc != SOLDR_ECONFIG || v != 777) {
            print_error("config_parse_size(\"%s\") = %d, %llu; want SOLDR_ECONFIG, unchanged\n",
                        bad[i], rc, (unsigned long long)v);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d bad sizes accepted", failed);
}

static void config_parse_duration_units(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t want;
    } ok[] = {
        {"0", 0},
        {"250ms", 250},
        {"30", 30000},
        {"30s", 30000},
        {"5m", 300000},
        {"6h", 21600000},
        {"2d", 172800000},
        {"0ms", 0},
        {"18446744073709551615ms", UINT64_MAX},
        {"1000ms", 1000},
        {"90d", 7776000000ULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 12345;
        int rc = config_parse_duration(ok[i].s, &v);
        if (rc != 0 || v != ok[i].want)
            fail_msg("config_parse_duration(\"%s\") = %d, %llu; want 0, %llu", ok[i].s, rc,
                     (unsigned long long)v, (unsigned long long)ok[i].want);
    }
}

static void config_parse_duration_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "s",
        "-1",
        "-5s",
        "1.5s",
        "5 m",
        "5x",
        "5sec",
        "5mss",
        "ms5",
        "1w",
        "1y",
        "1S",
        "1ms ",
        " -1s",
        " -1ms",
        " -5ms",
        "18446744073709551615s", /* overflows after the multiplication */
        "18446744073709552d",
        "18446744073709551616ms", /* strtoull overflow */
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        int rc = config_parse_duration(bad[i], &v);
        if (rc != SOLDR_ECONFIG || v != 777) {
            print_error("config_parse_duration(\"%s\") = %d, %llu; want SOLDR_ECONFIG, "
                        "unchanged\n",
                        bad[i], rc, (unsigned long long)v);
            failed++;
        }
    }
    if (failed)
        fail_msg("%d bad durations accepted", failed);
}

/* ---- config_load ------------------------------------------------------------ */

extern char **environ;

/* Each config test starts from an environment without SOLDR_* variables. */
static int clear_soldr_env(void **state)
{
    (void)state;
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "SOLDR_", 6) == 0) {
                const char *eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n < sizeof name) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        }
        if (!name[0])
            return 0;
        unsetenv(name);
    }
}

/* An in-memory FILE for config_load's messages. */
struct errbuf {
    char text[8192];
    FILE *f;
};

static void errbuf_open(struct errbuf *e)
{
    memset(e->text, 0, sizeof e->text);
    e->f = fmemopen(e->text, sizeof e->text, "w");
    assert_non_null(e->f);
}

static const char *errbuf_close(struct errbuf *e)
{
    fclose(e->f);
    e->f = NULL;
    return e->text;
}

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static void config_load_defaults(void **state)
{
    (void)state;
    struct soldr_config cfg;
    struct errbuf e;
    char *argv[] = {"soldr", "serve", NULL};
    int argc = ARGC(argv);
    errbuf_open(&e);
    assert_int_equal(config_load(&cfg, CFG_SERVE, &argc, argv, e.f), 0);
    assert_string_equal(errbuf_close(&e), "");
    assert_int_equal(argc, 2);
    assert_string_equal(argv[0], "soldr");
    assert_string_equal(argv[1], "serve");
    assert_null(argv[2]);
    assert_string_equal(cfg.data_dir, "./soldr-data");
    assert_string_equal(cfg.db_path, "./soldr-data/soldr.db");
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_string_equal(cfg.domain, "wh.localhost");
    assert_int_equal(cfg.durability, SOLDR_DURABILITY_FULL);
    assert_int_equal(cfg.max_body, 1 << 20);
    assert_int_equal(cfg.max_header_size, 32 * 1024);
    assert_int_equal(cfg.max_queue_bytes, 256ULL << 20);
    assert_int_equal(cfg.read_timeout_ms, 30000);
    assert_int_equal(cfg.idle_timeout_ms, 60000);
    assert_int_equal(cfg.busy_timeout_ms, 5000);
    assert_int_equal(cfg.max_connections, 10000);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.max_deliveries, 256);
    assert_int_equal(cfg.shutdown_grace_ms, 10000);
    assert_string_equal(cfg.smtp_url, "");
    assert_string_equal(cfg.alert_from, "soldr@localhost");
    assert_string_equal(cfg.alert_email, "");
    assert_string_equal(cfg.alert_url, "");
}

static void config_load_env(void **state)
{
    (void)state;
    setenv("SOLDR_DATA_DIR", "/var/lib/soldr", 1);
    setenv("SOLDR_LISTEN", "[::1]:9090", 1);
    setenv("SOLDR_DOMAIN", "WH.Example.COM", 1);
    setenv("SOLDR_DURABILITY", "normal", 1);
    setenv("SOLDR_MAX_BODY", "2MiB", 1);
    setenv("SOLDR_MAX_QUEUE", "1G", 1);
    setenv("SOLDR_READ_TIMEOUT", "250ms", 1);
    setenv("SOLDR_BUSY_TIMEOUT", "2", 1);
    setenv("SOLDR_MAX_CONNECTIONS", "42", 1);
    setenv("SOLDR_LOG_LEVEL", "debug", 1);
    struct soldr_config cfg;
    struct errbuf e;
    char *argv[] = {"soldr", NULL};
    int argc = ARGC(argv);
    errbuf_open(&e);
    assert_int_equal(config_load(&cfg, CFG_SERVE, &argc, argv, e.f), 0);
    assert_string_equal(errbuf_close(&e), "");
    assert_int_equal(argc, 1);
    assert_string_equal(cfg.data_dir, "/var/lib/soldr");
    assert_string_equal(cfg.db_path, "/var/lib/soldr/soldr.db");
    assert_string_equal(cfg.listen, "[::1]:9090");
    assert_string_equal(cfg.domain, "wh.example.com"); /* folded to lower case */
    assert_int_equal(cfg.durability, SOLDR_DURABILITY_NORMAL);
    assert_int_equal(cfg.max_body, 2 << 20);
    assert_int_equal(cfg.max_queue_bytes, 1ULL << 30);
    assert_int_equal(cfg.read_timeout_ms, 250);
    assert_int_equal(cfg.busy_timeout_ms, 2000);
    assert_int_equal(cfg.max_connections, 42);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_int_equal(cfg.idle_timeout_ms, 60000); /* untouched: default */
}

static void config_load_flags_override_env(void **state)
{
    (void)state;
    setenv("SOLDR_LISTEN", "1.2.3.4:1", 1);
    setenv("SOLDR_MAX_BODY", "2MiB", 1);
    setenv("SOLDR_IDLE_TIMEOUT", "5m", 1);
    struct soldr_config cfg;
    struct errbuf e;
    char *argv[] = {"soldr",
                    "serve",
                    "--listen",
                    "5.6.7.8:2",
                    "--unknown",
                    "keep-me",
                    "--max-body=64k",
                    "positional",
                    "--domain",
                    "Foo.Example",
                    "--help",
                    "--",
                    "--busy-timeout=100ms",
                    NULL};
    int argc = ARGC(argv);
    errbuf_open(&e);
    assert_int_equal(config_load(&cfg, CFG_SERVE, &argc, argv, e.f), 0);
    assert_string_equal(errbuf_close(&e), "");
    assert_string_equal(cfg.listen, "5.6.7.8:2");  /* flag beats env */
    assert_int_equal(cfg.max_body, 64 * 1024);     /* --flag=value beats env */
    assert_int_equal(cfg.idle_timeout_ms, 300000); /* env, no flag */
    assert_string_equal(cfg.domain, "foo.example");
    assert_int_equal(cfg.busy_timeout_ms, 100);
    /* Consumed flags are removed; everything else stays, in order. */
    assert_int_equal(argc, 7);
    assert_string_equal(argv[0], "soldr");
    assert_string_equal(argv[1], "serve");
    assert_string_equal(argv[2], "--unknown");
    assert_string_equal(argv[3], "keep-me");
    assert_string_equal(argv[4], "positional");
    assert_string_equal(argv[5], "--help");
    assert_string_equal(argv[6], "--");
    assert_null(argv[7]);
}

static void config_load_groups(void **state)
{
    (void)state;
    /* --listen is a serve setting: with only CFG_DB it is left to the subcommand. */
    struct soldr_config cfg;
    struct errbuf e;
    char *argv[] = {"soldr", "--listen", "9.9.9.9:9", "--data-dir", "/tmp/x", NULL};
    int argc = ARGC(argv);
    errbuf_open(&e);
    assert_int_equal(config_load(&cfg, CFG_DB, &argc, argv, e.f), 0);
    errbuf_close(&e);
    assert_string_equal(cfg.data_dir, "/tmp/x");
    assert_string_equal(cfg.db_path, "/tmp/x/soldr.db");
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_int_equal(argc, 3);
    assert_string_equal(argv[1], "--listen");
    assert_string_equal(argv[2], "9.9.9.9:9");
    assert_null(argv[3]);
}

/* Runs config_load on argv and asserts SOLDR_ECONFIG and a message naming `name`. */
static void expect_config_error(char **argv, int argc, const char *name)
{
    struct soldr_config cfg;
    struct errbuf e;
    errbuf_open(&e);
    int rc = config_load(&cfg, CFG_SERVE, &argc, argv, e.f);
    const char *msg = errbuf_close(&e);
    if (rc != SOLDR_ECONFIG)
        fail_msg("config_load = %d, want SOLDR_ECONFIG (expecting an error about %s)", rc, name);
    if (!strcasestr(msg, name))
        fail_msg("config error message \"%s\" does not name %s", msg, name);
    /* One line. */
    size_t n = strlen(msg);
    assert_true(n > 0);
    assert_int_equal(msg[n - 1], '\n');
    assert_null(memchr(msg, '\n', n - 1));
}

static void config_load_bad_values(void **state)
{
    (void)state;
    {
        setenv("SOLDR_MAX_BODY", "lots", 1);
        char *argv[] = {"soldr", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_MAX_BODY");
        unsetenv("SOLDR_MAX_BODY");
    }
    {
        setenv("SOLDR_DURABILITY", "sometimes", 1);
        char *argv[] = {"soldr", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_DURABILITY");
        unsetenv("SOLDR_DURABILITY");
    }
    {
        setenv("SOLDR_LOG_LEVEL", "loud", 1);
        char *argv[] = {"soldr", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_LOG_LEVEL");
        unsetenv("SOLDR_LOG_LEVEL");
    }
    {
        char *argv[] = {"soldr", "--durability=bogus", NULL};
        expect_config_error(argv, ARGC(argv), "--durability");
    }
    {
        char *argv[] = {"soldr", "--read-timeout", "soon", NULL};
        expect_config_error(argv, ARGC(argv), "--read-timeout");
    }
    {
        char *argv[] = {"soldr", "--max-connections", "10k", NULL};
        expect_config_error(argv, ARGC(argv), "--max-connections");
    }
    {
        char *argv[] = {"soldr", "serve", "--listen", NULL}; /* missing value */
        expect_config_error(argv, ARGC(argv), "--listen");
    }
    {
        char *argv[] = {"soldr", "--listen=", NULL}; /* empty value */
        expect_config_error(argv, ARGC(argv), "--listen");
    }
    {
        /* A bad env value is reported even when a flag would override it. */
        setenv("SOLDR_MAX_BODY", "-1", 1);
        char *argv[] = {"soldr", "--max-body", "1k", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_MAX_BODY");
        unsetenv("SOLDR_MAX_BODY");
    }
    /* Values that parse but fail validation. */
    {
        char *argv[] = {"soldr", "--max-body", "0", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_MAX_BODY");
    }
    {
        char *argv[] = {"soldr", "--max-body", "2G", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_MAX_BODY");
    }
    {
        char *argv[] = {"soldr", "--max-header-size", "100", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_MAX_HEADER_SIZE");
    }
    {
        char *argv[] = {"soldr", "--max-connections", "0", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_MAX_CONNECTIONS");
    }
    {
        char *argv[] = {"soldr", "--max-deliveries", "0", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_MAX_DELIVERIES");
    }
    {
        char *argv[] = {"soldr", "--shutdown-grace", "1 minute", NULL};
        expect_config_error(argv, ARGC(argv), "--shutdown-grace");
    }
    {
        char *argv[] = {"soldr", "--idle-timeout", "0", NULL};
        expect_config_error(argv, ARGC(argv), "timeouts");
    }
    {
        char *argv[] = {"soldr", "--domain=", NULL};
        expect_config_error(argv, ARGC(argv), "domain");
    }
    {
        char *argv[] = {"soldr", "--domain", ".example.com", NULL};
        expect_config_error(argv, ARGC(argv), "SOLDR_DOMAIN");
    }
    {
        /* Too long for the field. */
        char longdir[2048];
        memset(longdir, 'd', sizeof longdir - 1);
        longdir[sizeof longdir - 1] = '\0';
        char *argv[] = {"soldr", "--data-dir", longdir, NULL};
        expect_config_error(argv, ARGC(argv), "--data-dir");
    }
}

static void config_load_empty_values(void **state)
{
    (void)state;
    /* A setting whose default is empty (off) may be set empty; others may not. */
    setenv("SOLDR_SMTP_URL", "smtp://127.0.0.1:25", 1);
    struct soldr_config cfg;
    struct errbuf e;
    char *argv[] = {"soldr", "--smtp-url=", "--alert-url", "https://alerts.example/x", NULL};
    int argc = ARGC(argv);
    errbuf_open(&e);
    assert_int_equal(config_load(&cfg, CFG_SERVE, &argc, argv, e.f), 0);
    assert_string_equal(errbuf_close(&e), "");
    assert_int_equal(argc, 1);
    assert_string_equal(cfg.smtp_url, "");
    assert_string_equal(cfg.alert_url, "https://alerts.example/x");
    char *argv2[] = {"soldr", "--alert-from=", NULL};
    expect_config_error(argv2, ARGC(argv2), "--alert-from");
    char *argv3[] = {"soldr", "--data-dir", "", NULL};
    expect_config_error(argv3, ARGC(argv3), "--data-dir");
}

static void config_help_lists_settings(void **state)
{
    (void)state;
    char text[8192] = "";
    FILE *f = fmemopen(text, sizeof text, "w");
    assert_non_null(f);
    config_print_help(f, CFG_DB);
    fclose(f);
    assert_non_null(strstr(text, "SOLDR_DATA_DIR"));
    assert_non_null(strstr(text, "--busy-timeout"));
    assert_null(strstr(text, "SOLDR_LISTEN")); /* serve only */
    memset(text, 0, sizeof text);
    f = fmemopen(text, sizeof text, "w");
    assert_non_null(f);
    config_print_help(f, CFG_SERVE);
    fclose(f);
    static const char *const names[] = {"SOLDR_DATA_DIR", "SOLDR_LISTEN",       "SOLDR_DOMAIN",
                                        "SOLDR_MAX_BODY", "SOLDR_READ_TIMEOUT", "SOLDR_LOG_LEVEL",
                                        "--max-queue",    "--idle-timeout",     "127.0.0.1:8080"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strstr(text, names[i]))
            fail_msg("--help does not mention %s", names[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_parse_size_units),
        cmocka_unit_test(config_parse_size_rejects),
        cmocka_unit_test(config_parse_duration_units),
        cmocka_unit_test(config_parse_duration_rejects),
        cmocka_unit_test_setup(config_load_defaults, clear_soldr_env),
        cmocka_unit_test_setup(config_load_env, clear_soldr_env),
        cmocka_unit_test_setup(config_load_flags_override_env, clear_soldr_env),
        cmocka_unit_test_setup(config_load_groups, clear_soldr_env),
        cmocka_unit_test_setup(config_load_bad_values, clear_soldr_env),
        cmocka_unit_test_setup(config_load_empty_values, clear_soldr_env),
        cmocka_unit_test(config_help_lists_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
