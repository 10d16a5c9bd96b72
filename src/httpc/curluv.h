/* curluv: libcurl's multi interface driven by a libuv loop
 * (curl_multi_socket_action + uv_poll + uv_timer, after curl's
 * docs/examples/multi-uv.c). No thread, no blocking call on the loop; curl
 * resolves names on its own threads. Transfers to the same host reuse
 * connections. */
#ifndef SOLDR_CURLUV_H
#define SOLDR_CURLUV_H

#include <curl/curl.h>
#include <uv.h>

#include "common/errors.h"

struct curluv;

typedef void (*curluv_done_cb)(void *arg, CURL *easy, CURLcode result);

/* max_connections: idle connections kept for reuse (curl's cache would
 * otherwise shrink to a few as transfers finish, and keep-alive would be
 * lost for most deliveries); set it to the most transfers run at once. */
SOLDR_MUST_USE int curluv_init(struct curluv **out, uv_loop_t *loop, long max_connections);
/* Starts a transfer; done runs on the loop when it ends (the easy handle is
 * removed from the multi first and belongs to the caller again). */
SOLDR_MUST_USE int curluv_add(struct curluv *cu, CURL *easy, curluv_done_cb done, void *arg);
/* Removes a running transfer without calling its done callback. */
void curluv_remove(struct curluv *cu, CURL *easy);
/* Closes everything; every transfer must have ended or been removed. */
void curluv_close(struct curluv *cu);

#endif
