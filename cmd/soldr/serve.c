/* soldr serve: wires store, ingest and the processor to one loop, and shuts
 * them down in order on SIGTERM/SIGINT: the processor first (let deliveries
 * in flight finish, bounded by SOLDR_SHUTDOWN_GRACE, while ingest still
 * answers), then ingest (stop accepting, answer what was received), mgmt,
 * the purge, and last the store (drain the queue). A second signal exits at
 * once: everything acknowledged is committed already.
 *
 * Under systemd (DESIGN.md "Restarts"): ingest listens on the socket passed
 * by soldr.socket when there is one (LISTEN_FDS), so connections wait in its
 * backlog while soldr restarts; READY=1, STOPPING=1, STATUS= and watchdog
 * pings go to NOTIFY_SOCKET. SIGHUP reloads nothing (every setting is read
 * once at start): it is logged and otherwise ignored. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <curl/curl.h>
#include <uv.h>

#include "cmd.h"
#include "common/log.h"
#include "common/sdlisten.h"
#include "common/sdnotify.h"
#include "ingest/ingest.h"
#include "processor/processor.h"
#include "mgmt/mgmt.h"
#include "purge/purge.h"
#include "store/delivery.h"

struct server {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t watchdog;
    struct sdnotify *notify;
    const struct soldr_config *cfg;
    struct store *store;
    struct ingest *ingest;
    struct proc *proc;
    struct purge *purge;
    struct mgmt *mgmt;
    int stopping;
    int exit_code;
};

static void on_store_stopped(void *arg)
{
    struct server *s = arg;
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sighup, NULL);
    uv_close((uv_handle_t *)&s->watchdog, NULL);
}

static void on_purge_stopped(void *arg)
{
    struct server *s = arg;
    s->purge = NULL;
    sdnotify_send(s->notify, "STATUS=stopping: writing what is queued to the database");
    store_stop(s->store, on_store_stopped, s);
}

static void on_mgmt_stopped(void *arg)
{
    struct server *s = arg;
    s->mgmt = NULL;
    if (s->purge)
        purge_stop(s->purge, on_purge_stopped, s);
    else
        on_purge_stopped(s);
}

static void on_ingest_stopped(void *arg)
{
    struct server *s = arg;
    s->ingest = NULL;
    if (s->mgmt)
        mgmt_stop(s->mgmt, on_mgmt_stopped, s);
    else
        on_mgmt_stopped(s);
}

static void on_proc_stopped(void *arg)
{
    struct server *s = arg;
    s->proc = NULL;
    log_info("serve.stopping", "stopping: answering requests already received");
    sdnotify_send(s->notify, "STATUS=stopping: answering requests already received");
    if (s->ingest)
        ingest_stop(s->ingest, on_ingest_stopped, s);
    else
        on_ingest_stopped(s);
}

/* The processor stops first: while deliveries in flight finish (up to
 * SOLDR_SHUTDOWN_GRACE) ingest still accepts and answers, so a restart does
 * not make senders wait for slow destinations. New requests are stored and
 * delivered after the restart. */
static void shutdown_server(struct server *s)
{
    s->stopping = 1;
    char status[160];
    snprintf(status, sizeof status,
             "STOPPING=1\nSTATUS=stopping: finishing deliveries in flight (up to %llu ms); "
             "ingest still answers",
             (unsigned long long)s->cfg->shutdown_grace_ms);
    log_info("serve.stopping",
             "stopping: deliveries in flight may finish (up to %llu ms) while "
             "ingest still answers",
             (unsigned long long)s->cfg->shutdown_grace_ms);
    sdnotify_send(s->notify, status);
    if (s->proc)
        proc_stop(s->proc, on_proc_stopped, s);
    else
        on_proc_stopped(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    if (s->stopping) {
        /* Everything acknowledged is committed already; unanswered requests
         * were never acknowledged, so their senders retry. */
        log_warn("serve.exit_now", "second signal %d: exiting at once", signum);
        _exit(1);
    }
    shutdown_server(s);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    log_info("serve.sighup", "SIGHUP: nothing to reload (settings are read once at start); "
                             "restart to apply new settings: with soldr.socket no request is "
                             "refused meanwhile");
}

static void on_watchdog(uv_timer_t *t)
{
    struct server *s = t->data;
    sdnotify_send(s->notify, "WATCHDOG=1");
}

static const char *const socket_roles[] = {"ingest", "mgmt"};

/* Picks the passed sockets (sdlisten.h): *ingest_fd and *mgmt_fd, or -1 to
 * bind cfg->listen / cfg->mgmt_listen. Passed sockets soldr has no use for
 * are closed: the service manager keeps its own copy, so closing ours
 * refuses nothing. */
static void pick_sockets(const struct sdlisten *sl, const struct soldr_config *cfg, int *ingest_fd,
                         int *mgmt_fd)
{
    *ingest_fd = sdlisten_fd_for(sl, socket_roles, 2, 0);
    *mgmt_fd = sdlisten_fd_for(sl, socket_roles, 2, 1);
    for (int i = 0; i < sl->n; i++) {
        int fd = sl->fds[i];
        const char *name = sl->names[i][0] ? sl->names[i] : "(no name)";
        if (fd == *ingest_fd || fd == *mgmt_fd) {
            log_info("serve.socket", "%s uses passed socket fd %d, name %s",
                     fd == *ingest_fd ? "ingest" : "mgmt", fd, name);
            continue;
        }
        log_warn("serve.socket",
                 "passed socket fd %d (%s) has no use (known names: ingest, mgmt): closed", fd,
                 name);
        close(fd);
    }
    if (sl->n > 0 && *ingest_fd < 0)
        log_warn("serve.socket", "%d sockets passed, none for ingest: binding %s instead", sl->n,
                 cfg->listen);
}

static void serve_usage(void)
{
    printf("Usage: soldr serve [settings]\n"
           "Runs the relay. Requests to <label>.<SOLDR_DOMAIN> are stored in the database\n"
           "and answered 200 {\"id\":...} once committed. If a commit fails they are\n"
           "written to stdout as JSON lines (restore them with `soldr replay`).\n\n"
           "Under systemd (soldr.socket + soldr.service) ingest uses the socket passed in\n"
           "LISTEN_FDS (named 'ingest', or the first) instead of SOLDR_LISTEN, and reports\n"
           "READY=1 / STOPPING=1 / watchdog pings to NOTIFY_SOCKET. SIGTERM or SIGINT: stop\n"
           "accepting, answer what was received, let deliveries finish (SOLDR_SHUTDOWN_GRACE),\n"
           "exit 0; a second one exits at once. SIGHUP reloads nothing (it is logged):\n"
           "settings take effect on restart.\n"
           "`soldr serve --env-example` prints every setting as a commented EnvironmentFile.\n\n");
    config_print_help(stdout, CFG_SERVE | CFG_DB);
}

static void serve_env_example(void)
{
    printf("# soldr %s settings: an EnvironmentFile= for soldr.service (/etc/soldr/soldr.env).\n"
           "# Made by `soldr serve --env-example`. Each setting is commented out and shows its\n"
           "# default; uncomment and change what you need, then `systemctl restart soldr`\n"
           "# (settings are read once at start; soldr.socket keeps the port open meanwhile).\n"
           "# Under soldr.service: SOLDR_DATA_DIR is /var/lib/soldr (set in the unit), and\n"
           "# the ingest and mgmt addresses are those of soldr.socket / soldr-mgmt.socket\n"
           "# (systemctl edit soldr.socket); SOLDR_LISTEN applies only without them.\n",
           SOLDR_VERSION);
    config_print_env(stdout, CFG_SERVE | CFG_DB);
}

/* Raises the soft limit on open files to the hard one: each connection is a
 * descriptor, and running out is silent (libuv closes what it cannot take). */
static void raise_fd_limit(const struct soldr_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    /* ingest connections + mgmt (256) + deliveries + the database and logs */
    rlim_t need = (rlim_t)(cfg->max_connections + 256 + cfg->max_deliveries + 64);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log_warn("serve.fd_limit",
                 "open files are limited to %llu but SOLDR_MAX_CONNECTIONS and "
                 "SOLDR_MAX_DELIVERIES need about %llu: raise the limit (LimitNOFILE= under "
                 "systemd, ulimit -n) or lower SOLDR_MAX_CONNECTIONS",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

int cmd_serve(const struct soldr_config *cfg, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        serve_usage();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--env-example") == 0) {
        serve_env_example();
        return 0;
    }
    raise_fd_limit(cfg);
    if (argc > 1) {
        fprintf(stderr, "soldr serve: unexpected argument '%s' (see soldr serve --help)\n",
                argv[1]);
        return 2;
    }
    struct server s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    /* Until the loop handles SIGHUP its default action would end soldr. */
    signal(SIGHUP, SIG_IGN);
    /* Both change the environment: before any thread exists. */
    struct sdlisten sl;
    if (sdlisten_take(&sl) < 0 || sdnotify_open(&s.notify) < 0)
        return 1;
    int ingest_fd, mgmt_fd;
    pick_sockets(&sl, cfg, &ingest_fd, &mgmt_fd);
    if (cmd_open_store(cfg, &s.store, STDOUT_FILENO)) {
        sdnotify_close(s.notify);
        return 1;
    }
    int rc = store_recover_interrupted(s.store);
    if (rc < 0) {
        store_close(s.store);
        return 1;
    }
    if (rc > 0)
        log_warn("serve.recovered",
                 "%d requests were being delivered when soldr stopped: recorded as interrupted, "
                 "they will be delivered again (with the same webhook-id)",
                 rc);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_error("serve.start", "libcurl failed to initialise");
        store_close(s.store);
        return 1;
    }
    uv_loop_init(&s.loop);
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_init(&s.loop, &s.sigint);
    uv_signal_init(&s.loop, &s.sighup);
    uv_timer_init(&s.loop, &s.watchdog);
    s.sigterm.data = s.sigint.data = s.watchdog.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sighup, on_sighup, SIGHUP);
    uint64_t wd_ms = sdnotify_watchdog_usec(s.notify) / 2000;
    if (sdnotify_watchdog_usec(s.notify)) {
        /* On the loop, so that a stuck loop stops the pings. */
        wd_ms = wd_ms ? wd_ms : 1;
        uv_timer_start(&s.watchdog, on_watchdog, wd_ms, wd_ms);
        log_info("serve.watchdog", "watchdog: pinging the service manager every %llu ms",
                 (unsigned long long)wd_ms);
    }
    rc = store_start(s.store, &s.loop);
    if (rc) {
        log_error("serve.start", "cannot start the writer thread: %s", soldr_strerror(rc));
        return 1;
    }
    rc = ingest_start(&s.ingest, &s.loop, cfg, s.store, ingest_fd);
    if (!rc && (rc = proc_start(&s.proc, &s.loop, cfg, s.store)))
        log_error("serve.start", "cannot start the processor: %s", soldr_strerror(rc));
    if (!rc && (rc = purge_start(&s.purge, &s.loop, cfg, s.store)))
        log_error("serve.start", "cannot start the purge: %s", soldr_strerror(rc));
    if (!rc && (rc = mgmt_start(&s.mgmt, &s.loop, cfg, s.store, mgmt_fd)))
        log_error("serve.start", "cannot start the management port: %s", soldr_strerror(rc));
    else if (!rc && !s.mgmt && mgmt_fd >= 0)
        close(mgmt_fd); /* no secret: the passed socket has no use */
    if (rc) {
        s.exit_code = 1;
        shutdown_server(&s);
    } else {
        char where[300], ready[600];
        if (ingest_fd >= 0)
            snprintf(where, sizeof where, "passed socket fd %d", ingest_fd);
        else
            snprintf(where, sizeof where, "%s", cfg->listen);
        log_info("serve.ready", "soldr %s ready: ingest on %s for *.%s, database %s (%s)",
                 SOLDR_VERSION, where, cfg->domain, cfg->db_path,
                 cfg->durability == SOLDR_DURABILITY_FULL ? "durability full"
                                                          : "durability normal");
        /* Migrations ran (store_open) and the socket accepts. */
        snprintf(ready, sizeof ready, "READY=1\nSTATUS=soldr %s: ingest on %s for *.%s",
                 SOLDR_VERSION, where, cfg->domain);
        sdnotify_send(s.notify, ready);
    }
    uv_run(&s.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s.loop) != 0)
        log_error("serve.leak", "event loop closed with handles still open");
    store_close(s.store);
    curl_global_cleanup();
    sdnotify_close(s.notify);
    log_info("serve.stopped", "stopped");
    return s.exit_code;
}
