/* The alert sender: sends the notices queued in the store's alert outbox,
 * e-mail over SMTP (libcurl) or a JSON POST, and retries failed ones with
 * backoff. One batch at a time, so a notice is never sent twice at once; a
 * failing channel only delays its own notices, never deliveries. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "processor/outbound.h"
#include "processor/proc_int.h"

#define ALERT_BATCH      16
#define ALERT_TIMEOUT_MS 30000
#define ALERT_BASE_MS    5000
#define ALERT_CAP_MS     (3600 * 1000)

struct alerter {
    struct proc *p;
    uv_timer_t timer;
    int fetching, again, stopping;
    size_t sending;   /* transfers running */
    size_t recording; /* results with the store */
    struct send *sends;
    void (*close_done)(void *arg);
    void *close_arg;
};

struct send {
    struct alerter *a;
    struct send *prev, *next;
    struct store_alert *al;
    CURL *easy;
    struct curl_slist *list;
    struct buf msg; /* the mail or the POST body */
    size_t msg_off;
    struct buf sink;
    char errbuf[CURL_ERROR_SIZE];
};

static void fetch(struct alerter *a);

static void send_free(struct send *s)
{
    struct alerter *a = s->a;
    if (s->prev)
        s->prev->next = s->next;
    else if (a->sends == s)
        a->sends = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->easy)
        curl_easy_cleanup(s->easy);
    curl_slist_free_all(s->list);
    buf_free(&s->msg);
    buf_free(&s->sink);
    store_alert_free(s->al);
    free(s);
}

static void maybe_next(struct alerter *a)
{
    if (a->sending || a->recording || a->stopping)
        return;
    fetch(a); /* whatever was sent, look again: new notices or the next retry */
}

static void on_result_recorded(void *arg, int status)
{
    struct alerter *a = arg;
    (void)status; /* logged by the store */
    a->recording--;
    maybe_next(a);
}

static size_t on_sink(char *ptr, size_t size, size_t n, void *arg)
{
    struct send *s = arg;
    size_t len = size * n;
    if (s->sink.len < 4096)
        (void)!buf_append(&s->sink, ptr, len < 4096 - s->sink.len ? len : 4096 - s->sink.len);
    return len;
}

static size_t on_read(char *ptr, size_t size, size_t n, void *arg)
{
    struct send *s = arg;
    size_t room = size * n, left = s->msg.len - s->msg_off;
    size_t k = left < room ? left : room;
    memcpy(ptr, s->msg.data + s->msg_off, k);
    s->msg_off += k;
    return k;
}

static void on_sent(void *arg, CURL *easy, CURLcode result)
{
    struct send *s = arg;
    struct alerter *a = s->a;
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    char err[CURL_ERROR_SIZE + 96] = "";
    int is_url = strcmp(s->al->channel, "url") == 0;
    if (result != CURLE_OK)
        snprintf(err, sizeof err, "%s%s%s", curl_easy_strerror(result), s->errbuf[0] ? ": " : "",
                 s->errbuf);
    else if (is_url && (code < 200 || code >= 300))
        snprintf(err, sizeof err, "alert URL answered %ld", code);
    long long next = 0;
    if (err[0]) {
        next = time_now_ms() + (long long)outbound_backoff_ms(s->al->attempts + 1, ALERT_BASE_MS,
                                                              ALERT_CAP_MS, proc__random(a->p));
        log_warn("alert.failed", "%s notice for webhook %s via %s to %s failed: %s (retrying)",
                 s->al->kind, s->al->webhook, s->al->channel, s->al->target, err);
    } else {
        log_info("alert.sent", "%s notice for webhook %s sent via %s to %s", s->al->kind,
                 s->al->webhook, s->al->channel, s->al->target);
    }
    a->sending--;
    if (store_alert_result(a->p->st, s->al->id, err[0] ? err : NULL, next, on_result_recorded, a) ==
        0)
        a->recording++;
    send_free(s);
    maybe_next(a);
}

static int build_mail(struct send *s, const struct soldr_config *cfg)
{
    const struct store_alert *al = s->al;
    cJSON *doc = cJSON_Parse(al->detail);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc, "message");
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    int resolved = strcmp(al->kind, "resolved") == 0;
    int rc = buf_appendf(&s->msg,
                         "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
                         "Subject: [soldr] webhook %s: delivery %s\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\n%s\r\n",
                         cfg->alert_from, al->target, date, al->webhook,
                         resolved ? "resolved" : "failing",
                         cJSON_IsString(msg) ? msg->valuestring : "", al->detail);
    cJSON_Delete(doc);
    return rc;
}

static int start_send(struct alerter *a, struct store_alert *al)
{
    struct send *s = calloc(1, sizeof *s);
    if (!s) {
        store_alert_free(al);
        return UV_ENOMEM;
    }
    s->a = a;
    s->al = al;
    buf_init(&s->msg, 1 << 20);
    buf_init(&s->sink, 8192);
    s->next = a->sends;
    if (a->sends)
        a->sends->prev = s;
    a->sends = s;
    const struct soldr_config *cfg = a->p->cfg;
    int is_mail = strcmp(al->channel, "email") == 0;
    int rc = is_mail ? build_mail(s, cfg) : buf_appends(&s->msg, al->detail);
    if (!rc && !(s->easy = curl_easy_init()))
        rc = UV_ENOMEM;
    if (rc) {
        send_free(s);
        return rc;
    }
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ALERT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    if (is_mail) {
        char from[300];
        snprintf(from, sizeof from, "<%s>", cfg->alert_from);
        s->list = curl_slist_append(NULL, al->target);
        curl_easy_setopt(e, CURLOPT_URL, cfg->smtp_url);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(e, CURLOPT_MAIL_RCPT, s->list);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, s);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->msg.len);
    } else {
        s->list = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_URL, al->target);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->list);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->msg.len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->msg.data);
    }
    a->sending++;
    if ((rc = curluv_add(a->p->cu, e, on_sent, s)) != 0) {
        snprintf(s->errbuf, sizeof s->errbuf, "could not start the transfer");
        on_sent(s, e, CURLE_FAILED_INIT);
    }
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    alerter_kick(t->data);
}

static void on_due(void *arg, int status, struct store_alert **items, size_t n, long long next_due)
{
    struct alerter *a = arg;
    a->fetching = 0;
    for (size_t i = 0; i < n; i++)
        if (a->stopping)
            store_alert_free(items[i]);
        else
            (void)!start_send(a, items[i]);
    free(items);
    if (a->stopping)
        return;
    if (status < 0) {
        uv_timer_start(&a->timer, on_timer, 5000, 0);
    } else if (n == 0 && a->again) {
        a->again = 0;
        fetch(a);
    } else if (n == 0 && next_due > 0) {
        long long wait = next_due - time_now_ms();
        uv_timer_start(&a->timer, on_timer, (uint64_t)(wait > 0 ? wait : 0), 0);
    }
}

static void fetch(struct alerter *a)
{
    if (a->fetching || a->stopping)
        return;
    a->fetching = 1;
    a->again = 0;
    if (store_alerts_due(a->p->st, ALERT_BATCH, on_due, a) != 0) {
        a->fetching = 0;
        uv_timer_start(&a->timer, on_timer, 5000, 0);
    }
}

void alerter_kick(struct alerter *a)
{
    if (!a || a->stopping)
        return;
    if (a->fetching || a->sending || a->recording) {
        a->again = 1;
        return;
    }
    fetch(a);
}

int alerter_start(struct alerter **out, struct proc *p)
{
    struct alerter *a = calloc(1, sizeof *a);
    if (!a)
        return UV_ENOMEM;
    a->p = p;
    uv_timer_init(p->loop, &a->timer);
    a->timer.data = a;
    *out = a;
    return 0;
}

int alerter_idle(const struct alerter *a)
{
    return !a->fetching && !a->sending && !a->recording;
}

void alerter_stop(struct alerter *a)
{
    a->stopping = 1;
    uv_timer_stop(&a->timer);
}

void alerter_abandon(struct alerter *a)
{
    while (a->sends) {
        curluv_remove(a->p->cu, a->sends->easy);
        a->sending--;
        send_free(a->sends);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct alerter *a = h->data;
    void (*done)(void *) = a->close_done;
    void *arg = a->close_arg;
    free(a);
    done(arg);
}

void alerter_close(struct alerter *a, void (*done)(void *arg), void *arg)
{
    a->close_done = done;
    a->close_arg = arg;
    uv_close((uv_handle_t *)&a->timer, on_closed);
}
