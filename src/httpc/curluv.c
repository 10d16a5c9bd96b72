#include "httpc/curluv.h"

#include <stdlib.h>

#include "common/log.h"

struct curluv_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct curluv *cu;
    struct curluv_sock *prev, *next;
};

struct curluv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct curluv_sock *socks;
};

struct xfer {
    curluv_done_cb done;
    void *arg;
};

static void check_done(struct curluv *cu)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(cu->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(cu->multi, easy);
        curluv_done_cb done = x->done;
        void *arg = x->arg;
        free(x);
        done(arg, easy, result);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct curluv_sock *cs = p->data;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    struct curluv *cu = cs->cu;
    curl_multi_socket_action(cu->multi, cs->fd, flags, &running);
    check_done(cu);
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_close(struct curluv_sock *cs)
{
    struct curluv *cu = cs->cu;
    if (cs->prev)
        cs->prev->next = cs->next;
    else
        cu->socks = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    uv_poll_stop(&cs->poll);
    uv_close((uv_handle_t *)&cs->poll, on_sock_closed);
}

static int on_socket(CURL *easy, curl_socket_t s, int action, void *userp, void *socketp)
{
    (void)easy;
    struct curluv *cu = userp;
    struct curluv_sock *cs = socketp;
    if (action == CURL_POLL_REMOVE) {
        if (cs) {
            curl_multi_assign(cu->multi, s, NULL);
            sock_close(cs);
        }
        return 0;
    }
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs || uv_poll_init_socket(cu->loop, &cs->poll, s) != 0) {
            free(cs);
            log_error("curluv.poll", "cannot watch a socket of a delivery");
            return -1;
        }
        cs->fd = s;
        cs->cu = cu;
        cs->poll.data = cs;
        cs->next = cu->socks;
        if (cu->socks)
            cu->socks->prev = cs;
        cu->socks = cs;
        curl_multi_assign(cu->multi, s, cs);
    }
    int events = 0;
    if (action & CURL_POLL_IN)
        events |= UV_READABLE;
    if (action & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&cs->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct curluv *cu = t->data;
    int running;
    curl_multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(cu);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct curluv *cu = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&cu->timer);
    else
        uv_timer_start(&cu->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

int curluv_init(struct curluv **out, uv_loop_t *loop, long max_connections)
{
    struct curluv *cu = calloc(1, sizeof *cu);
    if (!cu)
        return UV_ENOMEM;
    cu->loop = loop;
    cu->multi = curl_multi_init();
    if (!cu->multi) {
        free(cu);
        return UV_ENOMEM;
    }
    uv_timer_init(loop, &cu->timer);
    cu->timer.data = cu;
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_MAXCONNECTS, max_connections);
    *out = cu;
    return 0;
}

int curluv_add(struct curluv *cu, CURL *easy, curluv_done_cb done, void *arg)
{
    struct xfer *x = malloc(sizeof *x);
    if (!x)
        return UV_ENOMEM;
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(cu->multi, easy) != CURLM_OK) {
        free(x);
        return UV_EINVAL;
    }
    return 0;
}

void curluv_remove(struct curluv *cu, CURL *easy)
{
    struct xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(cu->multi, easy);
    free(x);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void curluv_close(struct curluv *cu)
{
    curl_multi_cleanup(cu->multi); /* closes cached connections (POLL_REMOVE each) */
    while (cu->socks)
        sock_close(cu->socks);
    uv_close((uv_handle_t *)&cu->timer, on_timer_closed);
}
