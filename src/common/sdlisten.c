#include "common/sdlisten.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* A decimal number in [0, max], nothing else (no sign, no blanks). */
static int parse_num(const char *s, long max, long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_names(struct sdlisten *out, const char *names)
{
    int i = 0;
    const char *p = names;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (i >= out->n || len >= SDLISTEN_NAME_MAX)
            return -1;
        memcpy(out->names[i], p, len);
        out->names[i][len] = '\0';
        i++;
        if (!colon)
            break;
        p = colon + 1;
    }
    return i == out->n ? 0 : -1;
}

int sdlisten_parse(struct sdlisten *out, const char *pid, const char *fds, const char *names,
                   long self)
{
    memset(out, 0, sizeof *out);
    if (!pid || !fds)
        return 0;
    long p, n;
    if (parse_num(pid, 0x7fffffffL, &p) || p == 0) {
        log_error("listen.fds", "LISTEN_PID='%s' is not a process id", pid);
        return SOLDR_ECONFIG;
    }
    if (p != self) {
        log_warn("listen.fds",
                 "LISTEN_FDS is meant for process %ld, not this one (%ld): ignoring it", p, self);
        return 0;
    }
    if (parse_num(fds, SDLISTEN_MAX, &n)) {
        log_error("listen.fds", "LISTEN_FDS='%s' is not a number of sockets (at most %d)", fds,
                  SDLISTEN_MAX);
        return SOLDR_ECONFIG;
    }
    out->n = (int)n;
    for (int i = 0; i < out->n; i++)
        out->fds[i] = SDLISTEN_FIRST_FD + i;
    if (names && out->n > 0 && parse_names(out, names)) {
        log_error("listen.fds", "LISTEN_FDNAMES='%s' does not name the %d passed sockets", names,
                  out->n);
        out->n = 0;
        return SOLDR_ECONFIG;
    }
    return out->n;
}

int sdlisten_take(struct sdlisten *out)
{
    int n = sdlisten_parse(out, getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
                           getenv("LISTEN_FDNAMES"), (long)getpid());
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    for (int i = 0; i < n; i++) {
        int flags = fcntl(out->fds[i], F_GETFD);
        if (flags < 0 || fcntl(out->fds[i], F_SETFD, flags | FD_CLOEXEC) < 0) {
            int err = -errno;
            log_error("listen.fds", "passed fd %d is not usable: %s", out->fds[i], strerror(errno));
            return err;
        }
    }
    return n;
}

int sdlisten_fd_for(const struct sdlisten *l, const char *const roles[], int nroles, int role)
{
    if (role < 0 || role >= nroles)
        return -1;
    int named = 0;
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->names[i], roles[role]) == 0)
            return l->fds[i];
        for (int r = 0; r < nroles; r++)
            named |= strcmp(l->names[i], roles[r]) == 0;
    }
    return !named && role < l->n ? l->fds[role] : -1;
}
