/* Unit tests for src/common/sdlisten: the LISTEN_PID / LISTEN_FDS /
 * LISTEN_FDNAMES protocol of socket activation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/sdlisten.h"

static const char *const roles[] = {"ingest", "mgmt"};

static void parse_absent_means_none(void **state)
{
    (void)state;
    struct sdlisten l;
    assert_int_equal(sdlisten_parse(&l, NULL, NULL, NULL, 42), 0);
    assert_int_equal(sdlisten_parse(&l, "42", NULL, NULL, 42), 0);
    assert_int_equal(sdlisten_parse(&l, NULL, "1", NULL, 42), 0);
    assert_int_equal(sdlisten_parse(&l, "42", "0", NULL, 42), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), -1);
}

static void parse_other_pid_is_ignored(void **state)
{
    (void)state;
    struct sdlisten l;
    assert_int_equal(sdlisten_parse(&l, "41", "2", "ingest:mgmt", 42), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), -1);
}

static void parse_counts_from_fd_3(void **state)
{
    (void)state;
    struct sdlisten l;
    assert_int_equal(sdlisten_parse(&l, "42", "3", NULL, 42), 3);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.fds[0], 3);
    assert_int_equal(l.fds[1], 4);
    assert_int_equal(l.fds[2], 5);
    assert_string_equal(l.names[0], "");
    assert_int_equal(sdlisten_parse(&l, "42", "16", NULL, 42), 16);
    assert_int_equal(l.fds[15], 18);
}

static void parse_rejects_malformed(void **state)
{
    (void)state;
    struct sdlisten l;
    static const char *const bad_fds[] = {
        "", "x", "-1", "+1", " 1", "1 ", "2x", "17", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_fds / sizeof bad_fds[0]; i++)
        if (sdlisten_parse(&l, "42", bad_fds[i], NULL, 42) != SOLDR_ECONFIG)
            fail_msg("LISTEN_FDS='%s' accepted", bad_fds[i]);
    static const char *const bad_pid[] = {"", "0", "abc", "-42", "42abc"};
    for (size_t i = 0; i < sizeof bad_pid / sizeof bad_pid[0]; i++)
        if (sdlisten_parse(&l, bad_pid[i], "1", NULL, 42) != SOLDR_ECONFIG)
            fail_msg("LISTEN_PID='%s' accepted", bad_pid[i]);
    /* names must match the count */
    assert_int_equal(sdlisten_parse(&l, "42", "2", "ingest", 42), SOLDR_ECONFIG);
    assert_int_equal(sdlisten_parse(&l, "42", "1", "ingest:mgmt", 42), SOLDR_ECONFIG);
    assert_int_equal(l.n, 0);
    char longname[SDLISTEN_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(sdlisten_parse(&l, "42", "1", longname, 42), SOLDR_ECONFIG);
}

static void fd_for_by_name(void **state)
{
    (void)state;
    struct sdlisten l;
    assert_int_equal(sdlisten_parse(&l, "42", "2", "mgmt:ingest", 42), 2);
    assert_string_equal(l.names[0], "mgmt");
    assert_string_equal(l.names[1], "ingest");
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), 4);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 1), 3);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 2), -1);
    /* only mgmt passed: no ingest, and no falling back to the position */
    assert_int_equal(sdlisten_parse(&l, "42", "1", "mgmt", 42), 1);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), -1);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 1), 3);
    /* one named, one with systemd's default name */
    assert_int_equal(sdlisten_parse(&l, "42", "2", "soldr.socket:ingest", 42), 2);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), 4);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 1), -1);
}

static void fd_for_by_position_without_names(void **state)
{
    (void)state;
    struct sdlisten l;
    assert_int_equal(sdlisten_parse(&l, "42", "1", NULL, 42), 1);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), 3);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 1), -1);
    assert_int_equal(sdlisten_parse(&l, "42", "2", NULL, 42), 2);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), 3);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 1), 4);
    /* systemd's default names (the socket unit's) say nothing about roles */
    assert_int_equal(sdlisten_parse(&l, "42", "2", "soldr.socket:soldr.socket", 42), 2);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), 3);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 1), 4);
    /* empty names (LISTEN_FDNAMES=":") too */
    assert_int_equal(sdlisten_parse(&l, "42", "2", ":", 42), 2);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), 3);
}

/* sdlisten_take on this process: fd 3 made a socket, the variables unset,
 * FD_CLOEXEC set. Skipped if fd 3 is in use by the test runner. */
static void take_unsets_and_sets_cloexec(void **state)
{
    (void)state;
    if (fcntl(3, F_GETFD) >= 0)
        skip();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(dup2(sv[0], 3), 3); /* dup2 clears FD_CLOEXEC */
    assert_int_equal(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_FDNAMES", "ingest", 1);
    struct sdlisten l;
    assert_int_equal(sdlisten_take(&l), 1);
    assert_int_equal(sdlisten_fd_for(&l, roles, 2, 0), 3);
    assert_int_not_equal(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_FDNAMES"));
    /* taken once: a second look finds nothing */
    assert_int_equal(sdlisten_take(&l), 0);
    /* a passed fd that is not open is an error, not a crash later */
    close(3);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    assert_true(sdlisten_take(&l) < 0);
    assert_null(getenv("LISTEN_FDS"));
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_absent_means_none),
        cmocka_unit_test(parse_other_pid_is_ignored),
        cmocka_unit_test(parse_counts_from_fd_3),
        cmocka_unit_test(parse_rejects_malformed),
        cmocka_unit_test(fd_for_by_name),
        cmocka_unit_test(fd_for_by_position_without_names),
        cmocka_unit_test(take_unsets_and_sets_cloexec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
