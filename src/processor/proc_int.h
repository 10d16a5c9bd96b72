/* Internals shared by the processor's files. */
#ifndef SOLDR_PROC_INT_H
#define SOLDR_PROC_INT_H

#include <curl/curl.h>

#include "httpc/curluv.h"
#include "processor/processor.h"
#include "store/delivery.h"

#define RESP_BODY_MAX    (64 * 1024)
#define RESP_HEADERS_MAX (16 * 1024)

/* One delivery attempt in flight. */
struct delivery {
    struct proc *p;
    struct delivery *prev, *next; /* p->active */
    struct store_delivery *d;
    CURL *easy;
    struct curl_slist *headers;
    struct buf url, resp_headers, resp_body;
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    long long started_at;
    uint64_t t0_ns;
    int recording; /* 1: the outcome is with the store; 2: waiting to be sent again */
    struct store_attempt attempt;       /* the outcome, kept until it is committed */
    char errtext[CURL_ERROR_SIZE + 64]; /* attempt.error points here */
    struct delivery *rerecord_next;     /* p->rerecord */
};

struct alerter;

struct proc {
    uv_loop_t *loop;
    struct store *st;
    const struct soldr_config *cfg;
    struct curluv *cu;
    uv_timer_t due_timer;      /* next due retry */
    uv_timer_t grace_timer;    /* shutdown */
    uv_timer_t rerecord_timer; /* outcomes whose commit failed, tried again */
    struct delivery *rerecord; /* list of those */
    int claiming, claim_again, stopping;
    size_t in_flight; /* deliveries, including those being recorded */
    struct store_busy *busy;
    size_t nbusy, busy_cap;
    struct delivery *active;
    struct store_alert_defaults defs;
    uint64_t rng;
    struct alerter *alerter;
    int handles_open;
    uint64_t grace_deadline; /* loop time */
    uint64_t alert_deadline; /* loop time */
    void (*stop_done)(void *arg);
    void *stop_arg;
};

/* processor.c */
void proc__kick(struct proc *p);
uint64_t proc__random(struct proc *p);
void proc__busy_add(struct proc *p, const char *label, int delta);

/* deliver.c: starts one delivery (takes d); on failure records nothing and
 * returns the request to the caller's error path. */
int proc__deliver(struct proc *p, struct store_delivery *d);
/* Submits again the outcomes whose commit failed (rerecord_timer). */
void proc__rerecord(uv_timer_t *t);
/* Abandons every delivery in flight (shutdown). */
void proc__abandon_all(struct proc *p);

/* alert.c */
int alerter_start(struct alerter **out, struct proc *p);
void alerter_kick(struct alerter *a);
/* 1 when nothing is in flight; then alerter_close frees it. */
int alerter_idle(const struct alerter *a);
void alerter_stop(struct alerter *a);
/* Drops alerts being sent (they stay unsent in the outbox). */
void alerter_abandon(struct alerter *a);
void alerter_close(struct alerter *a, void (*done)(void *arg), void *arg);

#endif
