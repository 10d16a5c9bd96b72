/* The store's side of delivery: claiming due requests, recording attempts
 * and their outcome, crash recovery, and the alert outbox. All writes run on
 * the writer thread (store_start must have run); callbacks run on the loop.
 *
 * State machine (DESIGN.md), enforced in deliveries.c:
 *   pending --claim--> sending --2xx--> delivered
 *   sending --fail, attempts left--> pending (next_attempt_at = retry time)
 *   sending --fail, no attempts left / 410--> failed   (raises the alert)
 *   pending, webhook unknown or inactive at claim --> orphaned */
#ifndef SOLDR_STORE_DELIVERY_H
#define SOLDR_STORE_DELIVERY_H

#include "store/store.h"

/* A claimed request (state 'sending') with what delivering it needs. */
struct store_delivery {
    struct soldr_request req; /* id, webhook, method, target, headers, body */
    long long seq;
    uint32_t attempts;       /* attempts completed before this one */
    int manual;              /* a human asked for this attempt */
    struct soldr_webhook wh; /* the webhook's settings at claim time */
};

void store_delivery_free(struct store_delivery *d);

/* Webhooks with deliveries in flight, so a claim respects max_concurrency. */
struct store_busy {
    char label[SOLDR_LABEL_MAX + 1];
    uint32_t in_flight;
};

/* Result of a claim. items (n of them) now belong to the callee, who frees
 * each with store_delivery_free and the array with free(). next_due is the
 * earliest next_attempt_at of any pending request (0 if none); more is set
 * when the claim stopped at a bound and should be repeated at once. */
typedef void (*store_claim_cb)(void *arg, int status, struct store_delivery **items, size_t n,
                               long long next_due, int more);

/* Claims at most max_total due requests, at most max_concurrency minus
 * in-flight per webhook, oldest due first; marks requests of unknown or
 * inactive webhooks orphaned on the way. busy is copied. */
SOLDR_MUST_USE int store_claim(struct store *st, size_t max_total, const struct store_busy *busy,
                               size_t nbusy, store_claim_cb cb, void *arg);

enum store_outcome { STORE_OUT_DELIVERED, STORE_OUT_RETRY, STORE_OUT_FAILED };

/* One finished attempt and what it decides. Borrowed until the callback. */
struct store_attempt {
    long long seq;
    const char *request_id;
    const char *webhook;
    long long started_at;
    long long duration_ms;
    int status;               /* HTTP status, 0 when none (network error) */
    const char *resp_headers; /* "Name: value\r\n" lines, may be NULL */
    const void *resp_body;    /* capped by the caller */
    size_t resp_body_len;
    const char *error; /* curl error text or NULL */
    int manual;
    enum store_outcome outcome;
    long long next_attempt_at; /* for STORE_OUT_RETRY */
};

/* Where alerts go when a webhook names no address/URL of its own; an empty
 * string disables that channel's default. email is used only if smtp is on. */
struct store_alert_defaults {
    int smtp_enabled;
    const char *email;
    const char *url;
};

/* Records the attempt and applies its outcome (only if the request is still
 * 'sending': a request purged meanwhile is left alone). Entering 'failed'
 * puts a webhook that was not alerted into the alerted state and queues one
 * alert per channel; a delivery to an alerted webhook clears the state and
 * queues one resolved notice per channel. cb gets how many alert rows were
 * queued (>= 0) or an error. */
typedef void (*store_attempt_cb)(void *arg, int status_or_alerts);
SOLDR_MUST_USE int store_record_attempt(struct store *st, const struct store_attempt *a,
                                        const struct store_alert_defaults *defs,
                                        store_attempt_cb cb, void *arg);

/* Synchronous, before store_start: requests left 'sending' by a crash go back
 * to 'pending' with an attempt row saying "interrupted". Returns how many, or
 * an error. */
SOLDR_MUST_USE int store_recover_interrupted(struct store *st);

/* ---- alert outbox ---------------------------------------------------------- */

struct store_alert {
    long long id;
    char webhook[SOLDR_LABEL_MAX + 1];
    char kind[16];   /* "alert" or "resolved" */
    char channel[8]; /* "email" or "url" */
    char *target;    /* address or URL */
    char *detail;    /* the JSON document */
    uint32_t attempts;
};

void store_alert_free(struct store_alert *a);

/* Unsent alerts due now, at most max (items belong to the callee, free each
 * with store_alert_free and the array with free()); next_due is the earliest
 * next_attempt_at of the unsent ones left (0 if none). */
typedef void (*store_alerts_cb)(void *arg, int status, struct store_alert **items, size_t n,
                                long long next_due);
SOLDR_MUST_USE int store_alerts_due(struct store *st, size_t max, store_alerts_cb cb, void *arg);

/* Marks an alert sent (error NULL) or schedules its retry at next_attempt_at. */
SOLDR_MUST_USE int store_alert_result(struct store *st, long long id, const char *error,
                                      long long next_attempt_at, void (*cb)(void *arg, int status),
                                      void *arg);

/* Called on the loop after a commit that stored new requests (the processor
 * uses it to claim at once instead of polling). One hook per store. */
void store_on_insert(struct store *st, void (*hook)(void *arg), void *arg);

#endif
