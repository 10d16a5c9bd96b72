/* fuzz_mgmt_http: raw bytes through the mgmt API's HTTP handling, without
 * TLS (fuzz_mgmt_env.h): httpd + llhttp, then the real router, auth,
 * percent-decoding, query and JSON parsing and the route handlers, with
 * reads on the thread pool and writes on the store's writer thread.
 *
 * Per input: one loopback connection (fuzz_exchange). Checks:
 *  1. well-framed HTTP/1.1 answers (fuzz_answers);
 *  2. only statuses the API documents for client input: a 5xx means a
 *     healthy store or a handler failed on something a client sent;
 *  3. every application/json answer is valid JSON, and every error answer
 *     of the API carries {"error": "..."};
 *  4. auth: when the input does not hold the secret at all, no 2xx answer
 *     may come from an API route (only /healthz and the static UI);
 *  5. every API call is answered (in_flight back to 0) and the server
 *     closes and frees the connection within EXCHANGE_MS;
 *  6. every RESET_EVERY inputs: full stop, uv_loop_close() == 0, a fresh
 *     database with the seed rows. */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz_mgmt_env.h"

#define RESET_EVERY 4096
#define EXCHANGE_MS 2000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fuzz_mgmt E;

static void env_down(void)
{
    fuzz_mgmt_down(&E);
}

struct ctx {
    int has_secret;
};

static int is_json(const struct fuzz_answer *a)
{
    size_t n = 0;
    const char *ct = fuzz_answer_header(a, "content-type", &n);
    return ct && n >= 16 && strncmp(ct, "application/json", 16) == 0;
}

static void check_answer(void *arg, const struct fuzz_answer *a)
{
    const struct ctx *x = arg;
    static const int allowed[] = {200, 201, 202, 204, 400, 401, 404, 405, 409, 413, 414, 422, 431};
    int ok = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        ok |= a->status == allowed[i];
    FUZZ_CHECK(ok, "unexpected status %d: %.*s%.*s", a->status, (int)a->head_len, a->head,
               (int)(a->body_len > 500 ? 500 : a->body_len), a->body);
    cJSON *doc = NULL;
    if (is_json(a)) {
        doc = cJSON_ParseWithLength(a->body, a->body_len);
        FUZZ_CHECK(doc, "a %d answer says JSON but is not: %.*s", a->status,
                   (int)(a->body_len > 500 ? 500 : a->body_len), a->body);
        if (a->status >= 400)
            FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "error")),
                       "a %d without an error message: %.*s", a->status, (int)a->body_len, a->body);
    }
    if (a->status < 300 && !x->has_secret) {
        size_t n;
        int ui = fuzz_answer_header(a, "x-frame-options", &n) != NULL;
        int health = doc && cJSON_GetObjectItemCaseSensitive(doc, "processor");
        FUZZ_CHECK(ui || health, "a %d without the secret in the input (auth bypass?): %.*s%.*s",
                   a->status, (int)a->head_len, a->head,
                   (int)(a->body_len > 300 ? 300 : a->body_len), a->body);
    }
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!E.up) {
        static int once;
        if (!once++) {
            fuzz_process_init();
            atexit(env_down);
        }
        fuzz_mgmt_up(&E, 1);
    }
    struct fuzz_exchange x;
    fuzz_exchange(E.loop, E.port, data, size, E.baseline, EXCHANGE_MS, FUZZ_SPLIT_HASH, &x);
    struct ctx c = {
        .has_secret = memmem(data, size, FUZZ_SECRET, sizeof FUZZ_SECRET - 1) != NULL,
    };
    fuzz_answers(&x.answers, x.reset, check_answer, &c);
    FUZZ_CHECK(E.m->in_flight == 0, "%d API calls not answered after the connection closed",
               E.m->in_flight);
    fuzz_exchange_free(&x);
    static unsigned inputs;
    if (++inputs % RESET_EVERY == 0)
        fuzz_mgmt_down(&E);
    return 0;
}
