/* Starting and stopping the mgmt thread; the secret and the certificate. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "httpd/tls.h"
#include "mgmt/mgmt_int.h"

#define SECRET_MIN 32

/* The secret from SOLDR_MGMT_SECRET_FILE (first line) or SOLDR_MGMT_SECRET.
 * 1 loaded, 0 none configured, -1 unusable (logged). Never logs the value. */
static int load_secret(struct mgmt *m, const struct soldr_config *cfg)
{
    const char *src = cfg->mgmt_secret;
    char buf[sizeof m->secret];
    if (cfg->mgmt_secret_file[0]) {
        FILE *f = fopen(cfg->mgmt_secret_file, "r");
        if (!f) {
            log_error("mgmt.secret", "cannot read SOLDR_MGMT_SECRET_FILE %s: %s",
                      cfg->mgmt_secret_file, strerror(errno));
            return -1;
        }
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        src = buf;
    }
    if (!src[0])
        return 0;
    size_t n = strlen(src);
    if (n < SECRET_MIN || n >= sizeof m->secret) {
        log_error("mgmt.secret",
                  "the management secret must be %d to %zu characters (it has %zu): the "
                  "management port is not started",
                  SECRET_MIN, sizeof m->secret - 1, n);
        return -1;
    }
    memcpy(m->secret, src, n + 1);
    m->secret_len = n;
    memset(buf, 0, sizeof buf);
    return 1;
}

static int load_cert(struct mgmt *m, const struct soldr_config *cfg)
{
    char cert[1200], key[1200];
    if (cfg->mgmt_cert[0] || cfg->mgmt_key[0]) {
        if (!cfg->mgmt_cert[0] || !cfg->mgmt_key[0]) {
            log_error("mgmt.tls", "set both SOLDR_MGMT_CERT and SOLDR_MGMT_KEY, or neither");
            return SOLDR_ECONFIG;
        }
        snprintf(cert, sizeof cert, "%s", cfg->mgmt_cert);
        snprintf(key, sizeof key, "%s", cfg->mgmt_key);
    } else {
        snprintf(cert, sizeof cert, "%s/mgmt-cert.pem", cfg->data_dir);
        snprintf(key, sizeof key, "%s/mgmt-key.pem", cfg->data_dir);
        int rc = tls_selfsigned_ensure(cert, key, "soldr");
        if (rc)
            return rc;
    }
    int rc = tls_config_load(&m->tls, cert, key);
    char fp[96];
    if (!rc && tls_fingerprint(cert, fp) == 0)
        log_info("mgmt.tls", "management certificate %s, SHA-256 fingerprint %s", cert, fp);
    return rc;
}

static void on_results(uv_async_t *a);

static void on_httpd_stopped(void *arg)
{
    struct mgmt *m = arg;
    m->httpd = NULL;
    uv_close((uv_handle_t *)&m->async, NULL);
}

static void maybe_stop(struct mgmt *m)
{
    if (!m->stopping || m->in_flight > 0 || !m->httpd)
        return;
    struct httpd *h = m->httpd;
    httpd_stop(h, on_httpd_stopped, m);
}

static void on_results(uv_async_t *a)
{
    struct mgmt *m = a->data;
    pthread_mutex_lock(&m->mu);
    struct mgmt_call *c = m->results;
    m->results = NULL;
    int stop = m->stop_requested;
    pthread_mutex_unlock(&m->mu);
    while (c) {
        struct mgmt_call *next = c->next_result;
        c->after_write(c, c->write_rc);
        c = next;
    }
    if (stop && !m->stopping) {
        m->stopping = 1;
        log_info("mgmt.stopping", "management port closing");
    }
    maybe_stop(m);
}

static void *mgmt_main(void *arg)
{
    struct mgmt *m = arg;
    uv_run(&m->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&m->loop) != 0)
        log_error("mgmt.leak", "the management loop closed with handles open");
    uv_async_send(&m->main_async);
    return NULL;
}

static void free_mgmt(struct mgmt *m)
{
    tls_config_free(m->tls);
    pthread_mutex_destroy(&m->mu);
    memset(m->secret, 0, sizeof m->secret);
    free(m);
}

static void on_main_closed(uv_handle_t *h)
{
    struct mgmt *m = h->data;
    void (*done)(void *) = m->stop_done;
    void *arg = m->stop_arg;
    free_mgmt(m);
    if (done)
        done(arg);
}

static void on_thread_done(uv_async_t *a)
{
    struct mgmt *m = a->data;
    pthread_join(m->thread, NULL);
    uv_close((uv_handle_t *)&m->main_async, on_main_closed);
}

int mgmt_start(struct mgmt **out, uv_loop_t *main_loop, const struct soldr_config *cfg,
               struct store *st, int listen_fd)
{
    *out = NULL;
    struct mgmt *m = calloc(1, sizeof *m);
    if (!m)
        return UV_ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->cfg = cfg;
    m->st = st;
    m->main_loop = main_loop;
    int rc = load_secret(m, cfg);
    if (rc <= 0) {
        if (rc == 0)
            log_warn("mgmt.disabled",
                     "no management secret configured (SOLDR_MGMT_SECRET_FILE or "
                     "SOLDR_MGMT_SECRET, 32+ characters): the management API and UI are off");
        free_mgmt(m);
        return rc == 0 ? 0 : SOLDR_ECONFIG;
    }
    if ((rc = load_cert(m, cfg))) {
        free_mgmt(m);
        return rc;
    }
    uv_loop_init(&m->loop);
    uv_async_init(&m->loop, &m->async, on_results);
    m->async.data = m;
    struct httpd_limits lim = {
        /* a request edit: a body of SOLDR_MAX_BODY bytes in base64, plus room */
        .max_body = (cfg->max_body + 2) / 3 * 4 + 64 * 1024,
        .max_header_size = cfg->max_header_size,
        .read_timeout_ms = cfg->read_timeout_ms,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .max_connections = 256,
        .tls = m->tls,
        .max_reading_bytes = 64u << 20,
    };
    rc = listen_fd >= 0
             ? httpd_start_fd(&m->httpd, &m->loop, listen_fd, &lim, on_request_cb, m)
             : httpd_start(&m->httpd, &m->loop, cfg->mgmt_listen, &lim, on_request_cb, m);
    if (rc) {
        if (m->httpd)
            httpd_stop(m->httpd, NULL, NULL);
        uv_close((uv_handle_t *)&m->async, NULL);
        uv_run(&m->loop, UV_RUN_DEFAULT);
        uv_loop_close(&m->loop);
        free_mgmt(m);
        return rc;
    }
    uv_async_init(main_loop, &m->main_async, on_thread_done);
    m->main_async.data = m;
    if (pthread_create(&m->thread, NULL, mgmt_main, m) != 0) {
        log_error("mgmt.start", "cannot start the management thread");
        uv_close((uv_handle_t *)&m->main_async, NULL);
        return UV_EAGAIN; /* m leaks deliberately: its handles may be referenced */
    }
    log_info("mgmt.listen", "management API and UI on https://%s/ (TLS)",
             listen_fd >= 0 ? "passed socket" : cfg->mgmt_listen);
    *out = m;
    return 0;
}

void mgmt_stop(struct mgmt *m, void (*done)(void *arg), void *arg)
{
    m->stop_done = done;
    m->stop_arg = arg;
    pthread_mutex_lock(&m->mu);
    m->stop_requested = 1;
    pthread_mutex_unlock(&m->mu);
    uv_async_send(&m->async);
}
