/* receipt.c: delivery receipts applied to messages (the status order, history rows) and
 * the suppression list. The rule is in receipt.h; the API verifies and parses the
 * providers' requests (src/api/receipts.c) and calls in here inside one transaction. */
#include "receipt.h"

#include "send_int.h"

#include "../util/crypto.h"
#include "../util/json.h"
#include "../util/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int receipt_rank(struct str status)
{
    static const char *const order[] = {"SENT", "DELIVERED", "OPENED", "CLICKED", NULL};
    for (int i = 0; order[i]; i++)
        if (str_eq_c(status, order[i]))
            return i + 1;
    return 0;
}

static int kind_rank(int kind)
{
    switch (kind) {
    case RECEIPT_DELIVERED:
    case RECEIPT_COMPLAINT: /* a complaint proves the mail arrived */
        return 2;
    case RECEIPT_OPENED:
        return 3;
    case RECEIPT_CLICKED:
        return 4;
    default:
        return 0;
    }
}

const char *receipt_next_status(struct str status, int kind, const char **reason_code)
{
    static const char *const by_rank[] = {NULL, "SENT", "DELIVERED", "OPENED", "CLICKED"};
    int cur = receipt_rank(status), want;
    *reason_code = NULL;
    if (cur == 0)
        return NULL; /* not sent (yet), or ended: history only */
    if (kind == RECEIPT_BOUNCE_HARD || kind == RECEIPT_BOUNCE_SOFT) {
        if (cur != 1)
            return NULL; /* after a delivery receipt: never backwards */
        *reason_code = kind == RECEIPT_BOUNCE_HARD ? "hard" : "soft";
        return "UNDELIVERABLE";
    }
    want = kind_rank(kind);
    return want > cur ? by_rank[want] : NULL;
}

const char *receipt_kind_name(int kind)
{
    switch (kind) {
    case RECEIPT_DELIVERED:
        return "DELIVERED";
    case RECEIPT_OPENED:
        return "OPENED";
    case RECEIPT_CLICKED:
        return "CLICKED";
    case RECEIPT_BOUNCE_SOFT:
    case RECEIPT_BOUNCE_HARD:
        return "BOUNCED";
    case RECEIPT_COMPLAINT:
        return "COMPLAINED";
    default:
        return "OTHER";
    }
}

bool receipt_normalize_address(const char *address, char *out, size_t cap)
{
    bool email = strchr(address, '@') != NULL;
    size_t n = 0;
    for (const char *p = address; *p; p++) {
        char c = *p;
        if (!email && (c == ' ' || c == '-' || c == '(' || c == ')'))
            continue;
        if (email && (c == ' ' || c == '\t'))
            continue;
        if (n + 1 >= cap || n >= SUPPRESSION_ADDRESS_MAX)
            return false;
        out[n++] = email ? (char)tolower((unsigned char)c) : c;
    }
    out[n] = '\0';
    return n > 0;
}

int engine_receipt_seen(struct store_txn *t, const char *provider_id, const char *nonce,
                        int64_t now_ms)
{
    uint8_t h[32];
    char hex[65], id[256];
    cJSON *o = cJSON_CreateObject();
    char *body;
    int rc;
    /* hashed: nonces are provider text of any shape; the id stays short and plain */
    crypto_sha256(nonce, strlen(nonce), h);
    crypto_hex(h, sizeof h, hex);
    snprintf(id, sizeof id, "%.128s:%s", provider_id, hex);
    cJSON_AddNumberToObject(o, "seen", (double)now_ms);
    body = json_print(o);
    rc = store_doc_create(t, RECEIPT_SEEN_COLL, str_c(id), str_c(body), now_ms);
    free(body);
    cJSON_Delete(o);
    return rc;
}

int engine_suppression_add(struct store_txn *t, const char *address, const char *reason,
                           const char *provider, const char *event, const char *message_id,
                           int64_t now_ms)
{
    char key[SUPPRESSION_ADDRESS_MAX + 1];
    cJSON *o;
    char *body;
    int rc;
    if (!receipt_normalize_address(address, key, sizeof key))
        return HR_INVAL;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "address", key);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "provider", provider ? provider : "");
    cJSON_AddStringToObject(o, "event", event ? event : "");
    cJSON_AddStringToObject(o, "message_id", message_id ? message_id : "");
    body = json_print(o);
    rc = store_doc_create(t, SUPPRESSIONS_COLL, str_c(key), str_c(body), now_ms);
    free(body);
    cJSON_Delete(o);
    return rc;
}

cJSON *engine_suppression_entry(const struct doc_rec *d)
{
    cJSON *o = cJSON_ParseWithLength(d->body.p, d->body.len);
    char ts[96];
    time_t secs = (time_t)(d->created_ms / 1000);
    struct tm tmv;
    if (!o)
        o = cJSON_CreateObject();
    gmtime_r(&secs, &tmv);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900,
             tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec,
             (int)(d->created_ms % 1000));
    cJSON_AddStringToObject(o, "created", ts);
    return o;
}

int engine_suppressed(struct store *s, const char *channel, const cJSON *profile, char *addr,
                      size_t cap)
{
    const char *v = NULL;
    struct arena *a;
    struct doc_rec d;
    int rc;
    if (strcmp(channel, "email") == 0)
        v = json_str(profile, "email");
    else if (strcmp(channel, "sms") == 0)
        v = json_str(profile, "phone_number");
    if (!v || !receipt_normalize_address(v, addr, cap))
        return 0;
    a = arena_new(1024);
    rc = store_doc_get(s, SUPPRESSIONS_COLL, str_c(addr), a, &d);
    arena_free(a);
    if (rc == HR_NOTFOUND)
        return 0;
    return rc < 0 ? rc : 1;
}

/* history: the receipt's row on the message: type is the Courier status the receipt
 * stands for, `event` the provider's own name for it. */
static int history(struct store_txn *t, struct str id, const struct receipt_event *ev,
                   const char *type, const char *channel, const char *reason_code, bool moved,
                   int64_t now)
{
    cJSON *h = cJSON_CreateObject(), *x;
    int rc;
    x = cJSON_AddObjectToObject(h, "channel");
    cJSON_AddStringToObject(x, "id", channel);
    x = cJSON_AddObjectToObject(h, "integration");
    cJSON_AddStringToObject(x, "id", ev->provider_id);
    cJSON_AddStringToObject(x, "provider", ev->provider);
    x = cJSON_AddObjectToObject(h, "reference");
    cJSON_AddStringToObject(x, "id", ev->reference);
    cJSON_AddStringToObject(h, "event", ev->event);
    cJSON_AddStringToObject(h, "receipt", receipt_kind_name(ev->kind));
    if (ev->kind == RECEIPT_BOUNCE_HARD || ev->kind == RECEIPT_BOUNCE_SOFT) {
        cJSON_AddStringToObject(h, "reason", "BOUNCED");
        cJSON_AddStringToObject(h, "reasonCode",
                                reason_code ? reason_code
                                            : ev->kind == RECEIPT_BOUNCE_HARD ? "hard" : "soft");
    }
    if (ev->detail[0])
        cJSON_AddStringToObject(h, "error_message", ev->detail);
    if (ev->link[0])
        cJSON_AddStringToObject(h, "link", ev->link);
    if (ev->event_id[0])
        cJSON_AddStringToObject(h, "event_id", ev->event_id);
    if (ev->ts_ms > 0)
        cJSON_AddNumberToObject(h, "provider_ts", (double)ev->ts_ms);
    cJSON_AddBoolToObject(h, "status_changed", moved);
    rc = send__history(t, id, now, type, h);
    cJSON_Delete(h);
    return rc;
}

/* history_type: the row's type: the Courier status the receipt stands for. */
static const char *history_type(int kind)
{
    if (kind == RECEIPT_BOUNCE_SOFT || kind == RECEIPT_BOUNCE_HARD)
        return "UNDELIVERABLE";
    return kind == RECEIPT_OTHER ? "RECEIPT" : receipt_kind_name(kind);
}

int engine_receipt_apply(struct store_txn *t, const struct receipt_event *ev, int64_t now_ms,
                         bool *found, bool *duplicate)
{
    struct arena *a = arena_new(8192);
    struct msgref_rec ref;
    struct message_rec m;
    const char *next, *code = NULL;
    char seen[512];
    int rc;

    *found = false;
    *duplicate = false;
    rc = store_msgref_get(store_txn_store(t), str_c(ev->provider), str_c(ev->reference), a, &ref);
    if (rc == HR_NOTFOUND || rc == HR_INVAL) {
        rc = HR_OK; /* not one of ours (or not any more): acknowledged, ignored */
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = store_message_get_txn(t, ref.message_id, a, &m);
    if (rc == HR_NOTFOUND) {
        rc = HR_OK;
        goto out;
    }
    if (rc < 0)
        goto out;
    *found = true;
    if (ev->event_id[0]) {
        snprintf(seen, sizeof seen, "event:%s", ev->event_id);
        rc = engine_receipt_seen(t, ev->provider_id, seen, now_ms);
        if (rc == HR_CONFLICT) {
            *duplicate = true;
            rc = HR_OK;
            goto out;
        }
        if (rc < 0)
            goto out;
    }
    next = receipt_next_status(m.status, ev->kind, &code);
    rc = history(t, m.id, ev, history_type(ev->kind), ref.channel.p, code, next != NULL, now_ms);
    if (rc < 0)
        goto out;
    if (next) {
        m.status = str_c(next);
        m.updated_ms = now_ms;
        if (code) {
            m.reason = STR_LIT("BOUNCED");
            m.error = str_c(ev->detail);
        } else if (m.delivered_ms == 0) {
            m.delivered_ms = ev->ts_ms > 0 ? ev->ts_ms : now_ms;
        }
        rc = store_message_update(t, &m);
        if (rc < 0)
            goto out;
    }
    if ((ev->kind == RECEIPT_BOUNCE_HARD || ev->kind == RECEIPT_COMPLAINT) && ev->address[0]) {
        rc = engine_suppression_add(t, ev->address,
                                    ev->kind == RECEIPT_COMPLAINT ? "COMPLAINED" : "BOUNCED",
                                    ev->provider, ev->event, m.id.p, now_ms);
        if (rc == HR_CONFLICT || rc == HR_INVAL)
            rc = HR_OK; /* listed already, or no usable address */
    }
    LOG_I("receipt.applied", "message=%.*s provider=%s event=%s status=%s", (int)m.id.len, m.id.p,
          ev->provider, ev->event, next ? next : "unchanged");
out:
    arena_free(a);
    return rc;
}

int receipt_suppressed_history(struct store_txn *t, struct str id, const char *channel,
                               const char *detail, int64_t now_ms)
{
    cJSON *h = cJSON_CreateObject(), *x;
    int rc;
    x = cJSON_AddObjectToObject(h, "channel");
    cJSON_AddStringToObject(x, "id", channel);
    cJSON_AddStringToObject(h, "reason", "SUPPRESSED");
    cJSON_AddStringToObject(h, "error_message", detail);
    rc = send__history(t, id, now_ms, "UNDELIVERABLE", h);
    cJSON_Delete(h);
    return rc;
}
