/* prefs.c: subscription topics and user preferences: the checks of their API input, the
 * route stage's decision for one message (filtered, allowed channels, the unsubscribe
 * link), and the signed one-click unsubscribe tokens. See prefs.h for the stored shapes. */
#include "prefs.h"

#include "../util/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_KEY "prefs.unsub_secret"
#define MAC_HEX 32            /* 16 bytes of the HMAC, as hex */
#define TOPICS_PAGE 100
#define TOPICS_MAX 1000       /* topics listed for one user */

static const char *const STATUSES[] = {"OPTED_IN", "OPTED_OUT", "REQUIRED", NULL};
static const char *const CHANNELS[] = {"direct_message", "email", "push", "sms",
                                       "webhook", "inbox", NULL};

static const char *listed(const char *const *list, const char *s)
{
    for (int i = 0; s && list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return list[i];
    return NULL;
}

bool prefs_topic_id_valid(struct str id)
{
    return str_id_chars_ok(id, PREFS_TOPIC_ID_MAX);
}

bool prefs_status_valid(const char *s) { return listed(STATUSES, s) != NULL; }
bool prefs_channel_valid(const char *s) { return listed(CHANNELS, s) != NULL; }

int prefs_message_check(const cJSON *p, struct herr *err)
{
    const cJSON *it;
    if (!p || cJSON_IsNull(p))
        return HR_OK;
    if (!cJSON_IsObject(p))
        return herr_set(err, HR_INVAL, "message.preferences must be an object");
    cJSON_ArrayForEach(it, p)
    {
        if (cJSON_IsNull(it))
            continue;
        if (strcmp(it->string, "subscription_topic_id") != 0)
            return herr_set(err, HR_INVAL, "message.preferences.%.64s is not supported",
                            it->string);
        if (!cJSON_IsString(it) || !prefs_topic_id_valid(str_c(it->valuestring)))
            return herr_set(err, HR_INVAL,
                            "message.preferences.subscription_topic_id must be 1 to %d "
                            "characters of [A-Za-z0-9_.:-]",
                            PREFS_TOPIC_ID_MAX);
    }
    return HR_OK;
}

int prefs_topic_pref_check(const cJSON *topic, struct herr *err)
{
    const cJSON *cr, *c, *h;
    if (!cJSON_IsObject(topic))
        return herr_set(err, HR_INVAL, "topic must be an object");
    if (!prefs_status_valid(json_str(topic, "status")))
        return herr_set(err, HR_INVAL, "topic.status must be OPTED_IN, OPTED_OUT or REQUIRED");
    h = json_member(topic, "has_custom_routing");
    if (h && !cJSON_IsNull(h) && !cJSON_IsBool(h))
        return herr_set(err, HR_INVAL, "topic.has_custom_routing must be a boolean");
    cr = json_member(topic, "custom_routing");
    if (cr && !cJSON_IsNull(cr)) {
        if (!cJSON_IsArray(cr) || cJSON_GetArraySize(cr) > 16)
            return herr_set(err, HR_INVAL, "topic.custom_routing must be an array of channels");
        cJSON_ArrayForEach(c, cr) if (!cJSON_IsString(c) || !prefs_channel_valid(c->valuestring))
            return herr_set(err, HR_INVAL,
                            "topic.custom_routing: each channel is one of direct_message, "
                            "email, push, sms, webhook, inbox");
    }
    return HR_OK;
}

/* doc_json: the parsed document coll/id into *out (an object), HR_NOTFOUND when absent. */
static int doc_json(struct store *s, const char *coll, struct str id, cJSON **out)
{
    struct arena *a = arena_new(2048);
    struct doc_rec d;
    int rc = store_doc_get(s, coll, id, a, &d);
    *out = NULL;
    if (rc == HR_OK) {
        *out = cJSON_ParseWithLength(d.body.p, d.body.len);
        if (!cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = cJSON_CreateObject();
        }
    }
    arena_free(a);
    return rc;
}

int prefs_topic_get(struct store *s, struct str tid, cJSON **out)
{
    *out = NULL;
    if (!prefs_topic_id_valid(tid))
        return HR_NOTFOUND;
    return doc_json(s, PREFS_COLL_TOPICS, tid, out);
}

/* ---- tokens ------------------------------------------------------------------------------ */

struct secret_arg {
    char hex[65];
};

static int secret_tx(struct store_txn *t, void *varg)
{
    struct secret_arg *a = varg;
    int rc = store_meta_add(t, SECRET_KEY, str_c(a->hex));
    return rc == HR_CONFLICT ? HR_OK : rc; /* another node made it first: use theirs */
}

/* secret: the store's unsubscribe key (32 bytes as 64 hex) into key, made on first use. */
static int secret(struct store *s, char key[65])
{
    struct arena *a = arena_new(256);
    struct str v;
    int rc = store_meta_get(s, SECRET_KEY, a, &v);
    if (rc == HR_NOTFOUND) {
        struct secret_arg sa;
        struct herr err;
        uint8_t raw[32];
        crypto_random(raw, sizeof raw);
        crypto_hex(raw, sizeof raw, sa.hex);
        herr_clear(&err);
        rc = store_write(s, secret_tx, &sa, &err);
        if (rc == HR_OK)
            rc = store_meta_get(s, SECRET_KEY, a, &v);
    }
    if (rc == HR_OK && v.len != 64)
        rc = HR_IO;
    if (rc == HR_OK)
        str_copy(key, 65, v);
    arena_free(a);
    return rc;
}

static void mac_hex(const char key[65], const char *body, size_t n, char out[MAC_HEX + 1])
{
    uint8_t mac[32];
    crypto_hmac_sha256(str_c(key), body, n, mac);
    crypto_hex(mac, MAC_HEX / 2, out);
}

int prefs_token_make(struct store *s, int64_t now_ms, struct str uid, struct str tid, char *out,
                     size_t cap)
{
    char key[65], mac[MAC_HEX + 1];
    int n, rc;
    if (uid.len == 0 || uid.len > PREFS_USER_ID_MAX || !prefs_topic_id_valid(tid) ||
        cap < PREFS_TOKEN_MAX)
        return HR_INVAL;
    if ((rc = secret(s, key)) < 0)
        return rc;
    crypto_hex((const uint8_t *)uid.p, uid.len, out);
    n = (int)(2 * uid.len);
    out[n++] = '.';
    crypto_hex((const uint8_t *)tid.p, tid.len, out + n);
    n += (int)(2 * tid.len);
    n += snprintf(out + n, cap - (size_t)n, ".%lld", (long long)(now_ms / 1000));
    mac_hex(key, out, (size_t)n, mac);
    snprintf(out + n, cap - (size_t)n, ".%s", mac);
    return HR_OK;
}

static int unhex_part(struct str in, char *out, size_t max)
{
    if (in.len == 0 || in.len % 2 || in.len / 2 > max)
        return -1;
    for (size_t i = 0; i < in.len; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = in.p[i + k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= c - '0';
            else if (c >= 'a' && c <= 'f')
                v |= c - 'a' + 10;
            else
                return -1;
        }
        if (v == 0)
            return -1;
        out[i / 2] = (char)v;
    }
    out[in.len / 2] = 0;
    return 0;
}

int prefs_token_parse(struct store *s, int64_t now_ms, int64_t ttl_s, struct str token,
                      char *uid, char *tid)
{
    char key[65], mac[MAC_HEX + 1];
    const char *dot[3];
    int nd = 0, rc;
    int64_t issued = 0;
    if (token.len == 0 || token.len > PREFS_TOKEN_MAX)
        return HR_NOTFOUND;
    for (size_t i = 0; i < token.len; i++)
        if (token.p[i] == '.') {
            if (nd == 3)
                return HR_NOTFOUND;
            dot[nd++] = token.p + i;
        }
    if (nd != 3 || (size_t)(token.p + token.len - dot[2] - 1) != MAC_HEX)
        return HR_NOTFOUND;
    if ((rc = secret(s, key)) < 0)
        return rc;
    mac_hex(key, token.p, (size_t)(dot[2] - token.p), mac);
    if (!crypto_ct_equal(mac, MAC_HEX, dot[2] + 1, MAC_HEX))
        return HR_NOTFOUND;
    if (unhex_part((struct str){token.p, (size_t)(dot[0] - token.p)}, uid, PREFS_USER_ID_MAX) < 0 ||
        unhex_part((struct str){dot[0] + 1, (size_t)(dot[1] - dot[0] - 1)}, tid,
                   PREFS_TOPIC_ID_MAX) < 0 ||
        str_to_i64((struct str){dot[1] + 1, (size_t)(dot[2] - dot[1] - 1)}, &issued) < 0)
        return HR_NOTFOUND;
    if (ttl_s > 0 && now_ms / 1000 - issued > ttl_s)
        return HR_NOTFOUND;
    return HR_OK;
}

/* ---- the route stage ------------------------------------------------------------------ */

int prefs_decide(struct engine *e, const cJSON *spec, const cJSON *tmpl, const char *user_id,
                 struct prefs_decision *d)
{
    const char *tid = json_str(json_obj(spec, "preferences"), "subscription_topic_id");
    const char *dflt = "OPTED_IN", *st;
    cJSON *topic = NULL, *up = NULL;
    const cJSON *mine;
    int rc, n;
    memset(d, 0, sizeof *d);
    d->status = "OPTED_IN";
    if (!tid)
        tid = json_str(json_obj(tmpl, "subscription"), "topic_id");
    if (!tid || !prefs_topic_id_valid(str_c(tid)))
        return HR_OK; /* no topic: nothing to decide */
    snprintf(d->topic_id, sizeof d->topic_id, "%s", tid);
    rc = prefs_topic_get(e->store, str_c(tid), &topic);
    if (rc < 0 && rc != HR_NOTFOUND)
        goto out;
    if (listed(STATUSES, json_str(topic, "default_status")))
        dflt = listed(STATUSES, json_str(topic, "default_status"));
    d->status = dflt;
    if (strcmp(dflt, "REQUIRED") == 0) {
        rc = HR_OK; /* required: never filtered, no unsubscribe link */
        goto out;
    }
    if (user_id && user_id[0] && strlen(user_id) <= PREFS_USER_ID_MAX) {
        rc = doc_json(e->store, PREFS_COLL_USERS, str_c(user_id), &up);
        if (rc < 0 && rc != HR_NOTFOUND)
            goto out;
        mine = json_obj(up, tid);
        if ((st = listed(STATUSES, json_str(mine, "status"))) && strcmp(st, "REQUIRED") != 0)
            d->status = st;
        if (json_bool(mine, "has_custom_routing", false) && json_arr(mine, "custom_routing"))
            d->channels = cJSON_Duplicate(json_arr(mine, "custom_routing"), 1);
        if (e->public_url && e->public_url[0]) {
            char tok[PREFS_TOKEN_MAX];
            const char *base = e->public_url;
            size_t bl = strlen(base);
            rc = prefs_token_make(e->store, hclock_now(e->clock), str_c(user_id), str_c(tid),
                                  tok, sizeof tok);
            if (rc < 0)
                goto out;
            n = snprintf(d->unsub_url, sizeof d->unsub_url, "%.*s/u/%s",
                         (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl), base, tok);
            if (n < 0 || n > PREFS_LINK_MAX)
                d->unsub_url[0] = 0; /* ids too long for a header line: no link */
        }
    }
    d->filtered = strcmp(d->status, "OPTED_OUT") == 0;
    rc = HR_OK;
out:
    cJSON_Delete(topic);
    cJSON_Delete(up);
    return rc;
}

void prefs_decision_cleanup(struct prefs_decision *d)
{
    cJSON_Delete(d->channels);
    d->channels = NULL;
}

bool prefs_channel_allowed(const struct prefs_decision *d, const char *ch)
{
    const cJSON *c;
    if (!d->channels || !ch)
        return true;
    cJSON_ArrayForEach(c, d->channels) if (cJSON_IsString(c) && strcmp(c->valuestring, ch) == 0)
        return true;
    return false;
}

void prefs_list_unsubscribe(const struct engine *e, const struct prefs_decision *d, char *out,
                            size_t cap)
{
    out[0] = 0;
    if (!d->unsub_url[0])
        return;
    if (e->unsub_mailto && e->unsub_mailto[0])
        snprintf(out, cap, "<%s>, <mailto:%s?subject=unsubscribe>", d->unsub_url,
                 e->unsub_mailto);
    else
        snprintf(out, cap, "<%s>", d->unsub_url);
}

/* ---- a user's preferences ---------------------------------------------------------------- */

/* item: a TopicPreference for topic tid (topic doc may be NULL, mine may be NULL). */
static cJSON *item(const char *tid, const cJSON *topic, const cJSON *mine)
{
    cJSON *o = cJSON_CreateObject();
    const char *dflt = listed(STATUSES, json_str(topic, "default_status"));
    const char *st = listed(STATUSES, json_str(mine, "status"));
    const char *name = json_str(topic, "topic_name");
    if (!dflt)
        dflt = "OPTED_IN";
    if (!st || strcmp(dflt, "REQUIRED") == 0)
        st = dflt;
    cJSON_AddStringToObject(o, "topic_id", tid);
    cJSON_AddStringToObject(o, "topic_name", name ? name : tid);
    cJSON_AddStringToObject(o, "default_status", dflt);
    cJSON_AddStringToObject(o, "status", st);
    cJSON_AddBoolToObject(o, "has_custom_routing", json_bool(mine, "has_custom_routing", false));
    cJSON_AddItemToObject(o, "custom_routing",
                          json_arr(mine, "custom_routing")
                              ? cJSON_Duplicate(json_arr(mine, "custom_routing"), 1)
                              : cJSON_CreateArray());
    return o;
}

int prefs_user_topics(struct store *s, struct str uid, cJSON **out)
{
    struct arena *a = arena_new(8192);
    struct doc_rec *docs;
    size_t n = 0, total = 0;
    struct str after = STR_NULL;
    char last[PREFS_TOPIC_ID_MAX + 1] = "";
    cJSON *up = NULL, *items = cJSON_CreateArray(), *seen = cJSON_CreateObject();
    const cJSON *it;
    int rc = doc_json(s, PREFS_COLL_USERS, uid, &up);
    if (rc < 0 && rc != HR_NOTFOUND)
        goto out;
    do {
        arena_reset(a);
        rc = store_doc_list(s, PREFS_COLL_TOPICS, STR_NULL, after, TOPICS_PAGE, a, &docs, &n);
        if (rc < 0)
            goto out;
        for (size_t i = 0; i < n && total < TOPICS_MAX; i++, total++) {
            char tid[PREFS_TOPIC_ID_MAX + 1];
            cJSON *topic = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len);
            str_copy(tid, sizeof tid, docs[i].id);
            cJSON_AddItemToArray(items, item(tid, topic, json_obj(up, tid)));
            cJSON_AddTrueToObject(seen, tid);
            cJSON_Delete(topic);
        }
        if (n > 0) {
            str_copy(last, sizeof last, docs[n - 1].id);
            after = str_c(last);
        }
    } while (n == TOPICS_PAGE && total < TOPICS_MAX);
    cJSON_ArrayForEach(it, up) if (!json_member(seen, it->string))
        cJSON_AddItemToArray(items, item(it->string, NULL, it));
    rc = HR_OK;
out:
    arena_free(a);
    cJSON_Delete(up);
    cJSON_Delete(seen);
    if (rc < 0) {
        cJSON_Delete(items);
        items = NULL;
    }
    *out = items;
    return rc;
}

int prefs_user_set(struct store_txn *t, struct str uid, struct str tid, const cJSON *topic,
                   int64_t now_ms)
{
    struct arena *a = arena_new(2048);
    struct doc_rec d;
    cJSON *up = NULL, *mine = cJSON_CreateObject();
    const cJSON *cr = json_arr(topic, "custom_routing"), *old;
    bool routed = json_bool(topic, "has_custom_routing", false);
    char key[PREFS_TOPIC_ID_MAX + 1], *s = NULL;
    int rc = store_doc_get_txn(t, PREFS_COLL_USERS, uid, a, &d);
    if (rc == HR_OK)
        up = cJSON_ParseWithLength(d.body.p, d.body.len);
    else if (rc != HR_NOTFOUND)
        goto out;
    if (!cJSON_IsObject(up)) {
        cJSON_Delete(up);
        up = cJSON_CreateObject();
    }
    str_copy(key, sizeof key, tid);
    old = json_obj(up, key);
    if (!json_member(topic, "has_custom_routing") && !cr) {
        routed = json_bool(old, "has_custom_routing", false); /* a status alone keeps routing */
        cr = json_arr(old, "custom_routing");
    }
    cJSON_AddStringToObject(mine, "status", json_str(topic, "status"));
    cJSON_AddBoolToObject(mine, "has_custom_routing", routed);
    cJSON_AddItemToObject(mine, "custom_routing",
                          cr ? cJSON_Duplicate(cr, 1) : cJSON_CreateArray());
    cJSON_DeleteItemFromObjectCaseSensitive(up, key);
    cJSON_AddItemToObject(up, key, mine);
    mine = NULL;
    s = json_print(up);
    rc = store_doc_put(t, PREFS_COLL_USERS, uid, str_c(s), now_ms, NULL);
out:
    free(s);
    cJSON_Delete(mine);
    cJSON_Delete(up);
    arena_free(a);
    return rc;
}
