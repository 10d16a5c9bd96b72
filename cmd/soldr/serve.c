/* soldr serve: wires store, ingest and the processor to one loop, and shuts
 * them down in order on SIGTERM/SIGINT: ingest first (stop accepting, answer
 * what was received), then the processor (let deliveries in flight finish,
 * bounded), then the store (drain the queue). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#include <uv.h>

#include "cmd.h"
#include "common/log.h"
#include "ingest/ingest.h"
#include "processor/processor.h"
#include "store/delivery.h"

struct server {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    struct store *store;
    struct ingest *ingest;
    struct proc *proc;
    int stopping;
    int exit_code;
};

static void on_store_stopped(void *arg)
{
    struct server *s = arg;
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
}

static void on_proc_stopped(void *arg)
{
    struct server *s = arg;
    s->proc = NULL;
    store_stop(s->store, on_store_stopped, s);
}

static void on_ingest_stopped(void *arg)
{
    struct server *s = arg;
    s->ingest = NULL;
    if (s->proc)
        proc_stop(s->proc, on_proc_stopped, s);
    else
        on_proc_stopped(s);
}

static void shutdown_server(struct server *s)
{
    s->stopping = 1;
    log_info("serve.stopping", "stopping: answering requests already received");
    ingest_stop(s->ingest, on_ingest_stopped, s);
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

static void serve_usage(void)
{
    printf("Usage: soldr serve [settings]\n"
           "Runs the relay. Requests to <label>.<SOLDR_DOMAIN> are stored in the database\n"
           "and answered 200 {\"id\":...} once committed. If a commit fails they are\n"
           "written to stdout as JSON lines (restore them with `soldr replay`).\n\n");
    config_print_help(stdout, CFG_SERVE | CFG_DB);
}

int cmd_serve(const struct soldr_config *cfg, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        serve_usage();
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "soldr serve: unexpected argument '%s' (see soldr serve --help)\n",
                argv[1]);
        return 2;
    }
    struct server s;
    memset(&s, 0, sizeof s);
    if (cmd_open_store(cfg, &s.store, STDOUT_FILENO))
        return 1;
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
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    rc = store_start(s.store, &s.loop);
    if (rc) {
        log_error("serve.start", "cannot start the writer thread: %s", soldr_strerror(rc));
        return 1;
    }
    rc = ingest_start(&s.ingest, &s.loop, cfg, s.store);
    if (!rc && (rc = proc_start(&s.proc, &s.loop, cfg, s.store)))
        log_error("serve.start", "cannot start the processor: %s", soldr_strerror(rc));
    if (rc) {
        s.exit_code = 1;
        shutdown_server(&s);
    } else {
        log_info("serve.ready", "soldr %s ready: ingest on %s for *.%s, database %s (%s)",
                 SOLDR_VERSION, cfg->listen, cfg->domain, cfg->db_path,
                 cfg->durability == SOLDR_DURABILITY_FULL ? "durability full"
                                                          : "durability normal");
    }
    uv_run(&s.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s.loop) != 0)
        log_error("serve.leak", "event loop closed with handles still open");
    store_close(s.store);
    curl_global_cleanup();
    log_info("serve.stopped", "stopped");
    return s.exit_code;
}
