#include "common/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"

struct sdnotify {
    int fd;
    socklen_t addr_len;
    struct sockaddr_un addr;
    uint64_t watchdog_usec;
};

/* A decimal number, nothing else; 0 if absent or malformed. */
static uint64_t env_num(const char *name)
{
    const char *s = getenv(name);
    if (!s || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return errno || *end ? 0 : (uint64_t)v;
}

static uint64_t watchdog_from_env(void)
{
    uint64_t usec = env_num("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    if (usec && pid && env_num("WATCHDOG_PID") != (uint64_t)getpid()) {
        log_debug("notify.watchdog", "WATCHDOG_PID=%s is another process: no watchdog pings", pid);
        usec = 0;
    }
    return usec;
}

/* Fills the address from NOTIFY_SOCKET: a path, or '@' for the abstract
 * namespace (the name then has no terminating NUL in the address). */
static int set_addr(struct sdnotify *n, const char *path)
{
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof n->addr.sun_path)
        return SOLDR_ECONFIG;
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, path, len);
    if (path[0] == '@') {
        n->addr.sun_path[0] = '\0';
        n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else {
        n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    }
    return 0;
}

int sdnotify_open(struct sdnotify **out)
{
    *out = NULL;
    const char *path = getenv("NOTIFY_SOCKET");
    uint64_t usec = watchdog_from_env();
    int rc = 0;
    if (path) {
        struct sdnotify *n = calloc(1, sizeof *n);
        if (!n) {
            rc = UV_ENOMEM;
        } else if ((rc = set_addr(n, path))) {
            log_error("notify.socket",
                      "NOTIFY_SOCKET='%s' is not a socket path ('/...' or '@abstract')", path);
            free(n);
        } else if ((n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
            rc = -errno;
            log_error("notify.socket", "cannot create the notify socket: %s", strerror(errno));
            free(n);
        } else {
            n->watchdog_usec = usec;
            *out = n;
        }
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return rc;
}

int sdnotify_send(struct sdnotify *n, const char *msg)
{
    if (!n)
        return 0;
    ssize_t w;
    do
        w = sendto(n->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
                   (struct sockaddr *)&n->addr, n->addr_len);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        int err = -errno;
        log_debug("notify.send", "cannot notify the service manager: %s", strerror(errno));
        return err;
    }
    return 0;
}

uint64_t sdnotify_watchdog_usec(const struct sdnotify *n)
{
    return n ? n->watchdog_usec : 0;
}

void sdnotify_close(struct sdnotify *n)
{
    if (!n)
        return;
    close(n->fd);
    free(n);
}
