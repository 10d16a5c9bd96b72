/* sdlisten: listening sockets passed by the service manager (systemd socket
 * activation), read from the environment without libsystemd.
 *
 * The protocol (sd_listen_fds(3)): LISTEN_PID is the pid the sockets are
 * meant for, LISTEN_FDS how many there are (fds 3, 4, ...), LISTEN_FDNAMES
 * their names separated by ':' (optional; systemd names them after the
 * socket unit unless FileDescriptorName= says otherwise).
 *
 * soldr uses them so that the kernel, not soldr, owns the listening socket:
 * while soldr restarts, connections wait in the socket's backlog instead of
 * being refused. */
#ifndef SOLDR_SDLISTEN_H
#define SOLDR_SDLISTEN_H

#include "common/errors.h"

#define SDLISTEN_FIRST_FD 3
#define SDLISTEN_MAX      16
#define SDLISTEN_NAME_MAX 256 /* systemd's FDNAME_MAX is 255 */

struct sdlisten {
    int n;                                       /* fds passed: fds[0..n-1] */
    int fds[SDLISTEN_MAX];                       /* SDLISTEN_FIRST_FD + i */
    char names[SDLISTEN_MAX][SDLISTEN_NAME_MAX]; /* "" when LISTEN_FDNAMES is absent */
};

/* Parses the values of LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (each may
 * be NULL: not set) as seen by process `self`. Returns the number of fds
 * passed to this process, 0 when none are (variables absent, LISTEN_FDS=0,
 * or LISTEN_PID names another process: logged), or SOLDR_ECONFIG (logged)
 * when they are malformed: LISTEN_PID or LISTEN_FDS not a number, more than
 * SDLISTEN_MAX fds, or LISTEN_FDNAMES with a different number of names. */
SOLDR_MUST_USE int sdlisten_parse(struct sdlisten *out, const char *pid, const char *fds,
                                  const char *names, long self);

/* Reads the variables of this process with sdlisten_parse, unsets them (so
 * that nothing soldr might start inherits them) and marks the passed fds
 * close-on-exec. Changes the environment: call it before any thread starts.
 * Returns as sdlisten_parse, or a negative errno code if a passed fd is not
 * open. */
SOLDR_MUST_USE int sdlisten_take(struct sdlisten *out);

/* Which passed fd serves roles[role] (roles: the names the program gives its
 * sockets, e.g. {"ingest", "mgmt"}): the fd named so if there is one; else,
 * when no fd carries any of the role names (LISTEN_FDNAMES absent, or
 * systemd's default names), the fd at position `role`. -1 if neither. */
int sdlisten_fd_for(const struct sdlisten *l, const char *const roles[], int nroles, int role);

#endif
