/* Unit tests for src/common/sdnotify: datagrams to NOTIFY_SOCKET (path and
 * abstract), the watchdog variables, and never blocking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/sdnotify.h"

/* A datagram socket bound to `name` ("/path" or "@abstract"). */
static int listen_at(const char *name)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t len = strlen(name);
    memcpy(a.sun_path, name, len);
    socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (name[0] == '@')
        a.sun_path[0] = '\0';
    else
        al++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, al), 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void expect_msg(int fd, const char *want)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void clear_env(void)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

static void absent_is_a_no_op(void **state)
{
    (void)state;
    clear_env();
    struct sdnotify *n = (struct sdnotify *)1;
    assert_int_equal(sdnotify_open(&n), 0);
    assert_null(n);
    assert_int_equal(sdnotify_send(n, "READY=1"), 0);
    assert_int_equal(sdnotify_watchdog_usec(n), 0);
    sdnotify_close(n);
}

static void sends_to_a_path(void **state)
{
    (void)state;
    clear_env();
    char path[64];
    snprintf(path, sizeof path, "/tmp/soldr-notify-test-%ld", (long)getpid());
    unlink(path);
    int fd = listen_at(path);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    struct sdnotify *n;
    assert_int_equal(sdnotify_open(&n), 0);
    assert_non_null(n);
    assert_null(getenv("NOTIFY_SOCKET"));
    assert_null(getenv("WATCHDOG_USEC"));
    assert_null(getenv("WATCHDOG_PID"));
    assert_int_equal(sdnotify_watchdog_usec(n), 200000);
    assert_int_equal(sdnotify_send(n, "READY=1\nSTATUS=serving"), 0);
    expect_msg(fd, "READY=1\nSTATUS=serving");
    assert_int_equal(sdnotify_send(n, "WATCHDOG=1"), 0);
    expect_msg(fd, "WATCHDOG=1");
    sdnotify_close(n);
    close(fd);
    unlink(path);
}

static void sends_to_an_abstract_name(void **state)
{
    (void)state;
    clear_env();
    char name[64];
    snprintf(name, sizeof name, "@soldr-notify-test-%ld", (long)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    struct sdnotify *n;
    assert_int_equal(sdnotify_open(&n), 0);
    assert_int_equal(sdnotify_watchdog_usec(n), 0);
    assert_int_equal(sdnotify_send(n, "STOPPING=1"), 0);
    expect_msg(fd, "STOPPING=1");
    sdnotify_close(n);
    close(fd);
}

static void watchdog_for_another_pid_is_off(void **state)
{
    (void)state;
    clear_env();
    setenv("NOTIFY_SOCKET", "@soldr-nobody-listens", 1);
    setenv("WATCHDOG_USEC", "1000000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    struct sdnotify *n;
    assert_int_equal(sdnotify_open(&n), 0);
    assert_int_equal(sdnotify_watchdog_usec(n), 0);
    /* nobody bound: an error code, no crash */
    assert_true(sdnotify_send(n, "READY=1") < 0);
    sdnotify_close(n);
    setenv("NOTIFY_SOCKET", "@soldr-nobody-listens", 1);
    setenv("WATCHDOG_USEC", "nonsense", 1);
    assert_int_equal(sdnotify_open(&n), 0);
    assert_int_equal(sdnotify_watchdog_usec(n), 0);
    sdnotify_close(n);
}

static void malformed_socket_is_an_error(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "relative/path", "@", "/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv("NOTIFY_SOCKET", bad[i], 1);
        struct sdnotify *n = (struct sdnotify *)1;
        if (sdnotify_open(&n) >= 0)
            fail_msg("NOTIFY_SOCKET='%s' accepted", bad[i]);
        assert_null(n);
        assert_null(getenv("NOTIFY_SOCKET"));
    }
}

/* A manager that does not read: the queue fills, and sends then fail at
 * once (EAGAIN) instead of blocking the loop. */
static void full_queue_never_blocks(void **state)
{
    (void)state;
    clear_env();
    char name[64];
    snprintf(name, sizeof name, "@soldr-notify-full-%ld", (long)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    struct sdnotify *n;
    assert_int_equal(sdnotify_open(&n), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int failed = 0;
    for (int i = 0; i < 100000 && !failed; i++)
        failed = sdnotify_send(n, "WATCHDOG=1") < 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(failed);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    sdnotify_close(n);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(absent_is_a_no_op),
        cmocka_unit_test(sends_to_a_path),
        cmocka_unit_test(sends_to_an_abstract_name),
        cmocka_unit_test(watchdog_for_another_pid_is_off),
        cmocka_unit_test(malformed_socket_is_an_error),
        cmocka_unit_test(full_queue_never_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
