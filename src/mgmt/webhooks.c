/* /api/v1/webhooks: list, create, read, replace, update, delete. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "mgmt/mgmt_int.h"

static cJSON *webhook_json(const struct soldr_webhook *wh)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", wh->id);
    cJSON_AddStringToObject(o, "destination", wh->destination);
    cJSON_AddBoolToObject(o, "active", wh->active);
    cJSON_AddNumberToObject(o, "max_attempts", wh->max_attempts);
    cJSON_AddNumberToObject(o, "timeout_ms", wh->timeout_ms);
    cJSON_AddNumberToObject(o, "backoff_base_ms", wh->backoff_base_ms);
    cJSON_AddNumberToObject(o, "backoff_cap_ms", wh->backoff_cap_ms);
    cJSON_AddNumberToObject(o, "max_concurrency", wh->max_concurrency);
    cJSON_AddBoolToObject(o, "signing_secret_set", wh->signing_secret[0] != '\0');
    cJSON_AddStringToObject(o, "alert_email", wh->alert_email);
    cJSON_AddStringToObject(o, "alert_url", wh->alert_url);
    cJSON_AddBoolToObject(o, "alerted", wh->alerted_at != 0);
    if (wh->alerted_at)
        cJSON_AddNumberToObject(o, "alerted_at", (double)wh->alerted_at);
    else
        cJSON_AddNullToObject(o, "alerted_at");
    cJSON_AddNumberToObject(o, "created_at", (double)wh->created_at);
    cJSON_AddNumberToObject(o, "updated_at", (double)wh->updated_at);
    return o;
}

struct field {
    const char *name;
    int type; /* 's' string, 'b' bool, 'u' unsigned */
    size_t off, size;
};

#define S(f) 's', offsetof(struct soldr_webhook, f), sizeof(((struct soldr_webhook *)0)->f)
#define U(f) 'u', offsetof(struct soldr_webhook, f), 0
static const struct field fields[] = {
    {"id", S(id)},
    {"destination", S(destination)},
    {"active", 'b', offsetof(struct soldr_webhook, active), 0},
    {"max_attempts", U(max_attempts)},
    {"timeout_ms", U(timeout_ms)},
    {"backoff_base_ms", U(backoff_base_ms)},
    {"backoff_cap_ms", U(backoff_cap_ms)},
    {"max_concurrency", U(max_concurrency)},
    {"signing_secret", S(signing_secret)},
    {"alert_email", S(alert_email)},
    {"alert_url", S(alert_url)},
    {NULL, 0, 0, 0},
};

/* Applies the JSON fields to wh; answers 422 and returns -1 on a bad one.
 * Values are checked as a whole unless `partial` (a PATCH is checked once
 * merged with the stored row, in write_fn). */
static int apply(struct mgmt_call *c, struct soldr_webhook *wh, int allow_id, int partial)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, c->body)
    {
        const struct field *f = fields;
        while (f->name && strcmp(f->name, it->string) != 0)
            f++;
        if (!f->name || (!allow_id && f == fields)) {
            static const char *const read_only[] = {"signing_secret_set", "alerted", "alerted_at",
                                                    "created_at", "updated_at", NULL};
            const char *why = f->name ? "the id is in the URL" : "unknown field";
            for (int i = 0; !f->name && read_only[i]; i++)
                if (strcmp(read_only[i], it->string) == 0)
                    why = "read-only field";
            mgmt__reply_error(c, 422, why, it->string);
            return -1;
        }
        char *dst = (char *)wh + f->off;
        if (f->type == 's') {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= f->size) {
                mgmt__reply_error(c, 422, cJSON_IsString(it) ? "too long" : "must be a string",
                                  f->name);
                return -1;
            }
            memcpy(dst, it->valuestring, strlen(it->valuestring) + 1);
        } else if (f->type == 'b') {
            if (!cJSON_IsBool(it)) {
                mgmt__reply_error(c, 422, "must be true or false", f->name);
                return -1;
            }
            *(int *)(void *)dst = cJSON_IsTrue(it);
        } else {
            double v = it->valuedouble;
            if (!cJSON_IsNumber(it) || v < 0 || v > 4294967295.0 || v != (double)(uint32_t)v) {
                mgmt__reply_error(c, 422, "must be a whole number", f->name);
                return -1;
            }
            *(uint32_t *)(void *)dst = (uint32_t)v;
        }
    }
    const char *field, *why;
    if (!partial && store_webhook_validate(wh, &field, &why) != 0) {
        mgmt__reply_error(c, 422, why, field);
        return -1;
    }
    return 0;
}

/* ---- reads ------------------------------------------------------------------ */

static int add_to_array(void *arg, const struct soldr_webhook *wh)
{
    cJSON_AddItemToArray(arg, webhook_json(wh));
    return 0;
}

static cJSON *read_list(struct store_reader *rd, struct mgmt_call *c, int *status)
{
    (void)c;
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "webhooks");
    if (store_read_webhooks(rd, add_to_array, arr) != 0) {
        cJSON_Delete(o);
        *status = 503;
        return NULL;
    }
    return o;
}

static cJSON *read_one(struct store_reader *rd, struct mgmt_call *c, int *status)
{
    struct soldr_webhook wh;
    int rc = store_read_webhook(rd, c->params[0], &wh);
    if (rc) {
        *status = rc == SOLDR_ENOTFOUND ? 404 : 503;
        return NULL;
    }
    return webhook_json(&wh);
}

static void list(struct mgmt_call *c)
{
    mgmt__read(c, read_list);
}

static void get(struct mgmt_call *c)
{
    mgmt__read(c, read_one);
}

/* ---- writes (on the writer thread) ------------------------------------------ */

struct wh_write {
    struct soldr_webhook wh;
    const char *bad_field, *why; /* a PATCH whose merged result is invalid */
    int mode;                    /* 'c'reate, 'r'eplace, 'p'atch, 'd'elete */
};

static int write_fn(struct store *st, void *arg)
{
    struct mgmt_call *c = arg;
    struct wh_write *w = c->user;
    if (w->mode == 'c')
        return store_webhook_insert(st, &w->wh);
    if (w->mode == 'd')
        return store_webhook_delete(st, w->wh.id);
    struct soldr_webhook cur;
    int rc = store_webhook_get(st, w->wh.id, &cur);
    if (rc)
        return rc;
    if (w->mode == 'p') {
        /* Re-apply the patch on the row as it is now, inside the transaction. */
        char id[sizeof cur.id];
        memcpy(id, cur.id, sizeof id);
        struct soldr_webhook patched = cur;
        const cJSON *it;
        cJSON_ArrayForEach(it, c->body)
        {
            for (const struct field *f = fields; f->name; f++) {
                if (strcmp(f->name, it->string) != 0)
                    continue;
                memcpy((char *)&patched + f->off, (char *)&w->wh + f->off,
                       f->type == 's'   ? f->size
                       : f->type == 'b' ? sizeof(int)
                                        : sizeof(uint32_t));
            }
        }
        memcpy(patched.id, id, sizeof id);
        if (store_webhook_validate(&patched, &w->bad_field, &w->why) != 0)
            return SOLDR_EMALFORMED;
        w->wh = patched;
    }
    w->wh.created_at = cur.created_at;
    w->wh.alerted_at = cur.alerted_at;
    return store_webhook_update(st, &w->wh);
}

static void after_write(struct mgmt_call *c, int rc)
{
    struct wh_write *w = c->user;
    if (rc == 0 && w->mode == 'd')
        mgmt__reply(c, 204, NULL, NULL, NULL, 0);
    else if (rc == 0)
        mgmt__reply_json(c, w->mode == 'c' ? 201 : 200, webhook_json(&w->wh));
    else if (rc == SOLDR_EEXIST)
        mgmt__reply_error(c, 409, "a webhook with this id exists", "id");
    else if (rc == SOLDR_ENOTFOUND)
        mgmt__reply_error(c, 404, "no such webhook", NULL);
    else if (rc == SOLDR_EMALFORMED)
        mgmt__reply_error(c, 422, w->why ? w->why : "invalid", w->bad_field);
    else
        mgmt__reply_error(c, 503, "the database cannot be written now, retry", NULL);
}

static void start_write(struct mgmt_call *c, int mode)
{
    struct wh_write *w = calloc(1, sizeof *w);
    if (!w) {
        mgmt__reply_error(c, 503, "out of memory", NULL);
        return;
    }
    c->user = w;
    w->mode = mode;
    store_webhook_defaults(&w->wh);
    if (mode != 'c') {
        if (!route_label_valid(c->params[0])) {
            mgmt__reply_error(c, 404, "no such webhook", NULL);
            return;
        }
        snprintf(w->wh.id, sizeof w->wh.id, "%s", c->params[0]);
    }
    if (mode != 'd' && apply(c, &w->wh, mode == 'c', mode == 'p') != 0)
        return;
    if (mode == 'c' && !cJSON_GetObjectItemCaseSensitive(c->body, "destination")) {
        mgmt__reply_error(c, 422, "required", "destination");
        return;
    }
    mgmt__write(c, write_fn, after_write);
}

static void create(struct mgmt_call *c)
{
    start_write(c, 'c');
}

static void replace(struct mgmt_call *c)
{
    if (!cJSON_GetObjectItemCaseSensitive(c->body, "destination")) {
        mgmt__reply_error(c, 422, "required", "destination");
        return;
    }
    start_write(c, 'r');
}

static void patch(struct mgmt_call *c)
{
    start_write(c, 'p');
}

static void del(struct mgmt_call *c)
{
    start_write(c, 'd');
}

const struct mgmt_route mgmt__webhook_routes[] = {
    {"GET", "/api/v1/webhooks", list, 0},
    {"POST", "/api/v1/webhooks", create, 1},
    {"GET", "/api/v1/webhooks/:id", get, 0},
    {"PUT", "/api/v1/webhooks/:id", replace, 1},
    {"PATCH", "/api/v1/webhooks/:id", patch, 1},
    {"DELETE", "/api/v1/webhooks/:id", del, 0},
    {NULL, NULL, NULL, 0},
};
