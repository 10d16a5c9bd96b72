/* sdnotify: tells the service manager how soldr is doing (sd_notify(3)
 * protocol, without libsystemd): one datagram per message to the unix socket
 * named by NOTIFY_SOCKET ("/run/systemd/notify", or "@name" for an abstract
 * socket), such as "READY=1", "STOPPING=1", "STATUS=...", "WATCHDOG=1".
 *
 * The socket is non-blocking and every send uses MSG_DONTWAIT: a manager
 * that does not read never stalls the loop; the message is dropped (logged
 * at debug level) instead. */
#ifndef SOLDR_SDNOTIFY_H
#define SOLDR_SDNOTIFY_H

#include <stdint.h>

#include "common/errors.h"

struct sdnotify;

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and unsets them (call
 * it before any thread starts: it changes the environment). *out is NULL
 * when NOTIFY_SOCKET is absent: not run by a manager that listens, and
 * every function below is then a no-op. Returns 0, or a negative code
 * (logged; *out NULL) when NOTIFY_SOCKET is malformed or no socket can be
 * created. */
SOLDR_MUST_USE int sdnotify_open(struct sdnotify **out);

/* Sends msg ("READY=1\nSTATUS=serving", no trailing newline needed) in one
 * datagram. Never blocks. Returns 0, or a negative errno code (logged at
 * debug level: the manager may have gone). n may be NULL. */
int sdnotify_send(struct sdnotify *n, const char *msg);

/* How often the manager expects "WATCHDOG=1", in microseconds (WATCHDOG_USEC
 * when WATCHDOG_PID is absent or this process); 0 when it expects none or
 * n is NULL. Pinging at half this interval is the usual rule. */
uint64_t sdnotify_watchdog_usec(const struct sdnotify *n);

/* Closes the socket and frees n (NULL is fine). */
void sdnotify_close(struct sdnotify *n);

#endif
