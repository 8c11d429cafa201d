/* providers_api.c: Courier's provider configurations over the "providers" collection.
 *   POST   /providers {provider, settings, alias?, title?, priority?, enabled?, channel?,
 *                      limits?: {concurrency?, per_second?, burst?}}
 *   GET    /providers                 -> {paging, results} by channel, then priority
 *   GET    /providers/catalog?channel&keys&name
 *                              -> {paging, results:[{provider, name, channel, settings}]}
 *   GET    /providers/:id
 *   PUT    /providers/:id             (replace; a secret sent back as its mask is kept
 *                                      while the destination settings are unchanged)
 *   DELETE /providers/:id             -> 204
 * Settings are checked by the provider's own validate(). Secrets (the provider's
 * secret_fields) are stored in full and never answered: every response shows
 * "****" + their last 4 characters. `limits` are per node (src/engine/limit.h). The engine reads the same documents
 * (engine_channel_providers in src/engine/lookup.c). */
#include "templates.h"

#include "../engine/defcache.h"
#include "../engine/limit.h"
#include "../providers/http_client.h"
#include "../providers/provider.h"
#include "../util/buf.h"
#include "../util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROVIDERS_MAX 500       /* configurations per workspace */
#define LABEL_MAX_CHARS 256     /* alias, title */
#define PRIORITY_DEFAULT 100
#define PRIORITY_MAX 1000000
#define MASK "****"

/* ---- catalog ------------------------------------------------------------------------------ */

static const char *const SECURE_VALUES[] = {"none", "starttls", "tls", NULL};
static const char *const METHOD_VALUES[] = {"POST", "PUT", NULL};
static const char *const MAILGUN_REGIONS[] = {"us", "eu", NULL};
static const char *const CHANNEL_VALUES[] = {"email", "sms", "push", "direct_message", "webhook",
                                             NULL};

struct field_desc {
    const char *name, *type;
    bool required;
    const char *const *values; /* the allowed values, or NULL */
};

struct provider_desc {
    const char *provider, *name, *channel, *description;
    struct field_desc fields[11]; /* ends at a NULL name */
};

/* What each provider's settings look like, for a UI; the provider's validate() is the
 * authority. console delivers any channel: its channel is given beside the settings. */
static const struct provider_desc CATALOG[] = {
    {"smtp", "SMTP", "email", "Email through any SMTP server (STARTTLS or implicit TLS)",
     {{"host", "string", true, NULL},
      {"port", "number", false, NULL},
      {"secure", "string", false, SECURE_VALUES},
      {"username", "string", false, NULL},
      {"password", "string", false, NULL},
      {"from", "string", true, NULL},
      {"from_name", "string", false, NULL},
      {"reply_to", "string", false, NULL},
      {"tls_verify", "boolean", false, NULL},
      {"timeout_ms", "number", false, NULL}}},
    {"sendgrid", "SendGrid", "email", "Email through SendGrid's v3 Mail Send API",
     {{"api_key", "string", true, NULL},
      {"from", "string", true, NULL},
      {"from_name", "string", false, NULL},
      {"reply_to", "string", false, NULL},
      {"base_url", "string", false, NULL},
      {"webhook_public_key", "string", false, NULL}}},
    {"postmark", "Postmark", "email", "Email through Postmark's Email API",
     {{"server_token", "string", true, NULL},
      {"from", "string", true, NULL},
      {"from_name", "string", false, NULL},
      {"reply_to", "string", false, NULL},
      {"message_stream", "string", false, NULL},
      {"base_url", "string", false, NULL},
      {"webhook_username", "string", false, NULL},
      {"webhook_password", "string", false, NULL}}},
    {"resend", "Resend", "email", "Email through Resend's Emails API (with idempotency keys)",
     {{"api_key", "string", true, NULL},
      {"from", "string", true, NULL},
      {"from_name", "string", false, NULL},
      {"reply_to", "string", false, NULL},
      {"base_url", "string", false, NULL},
      {"webhook_secret", "string", false, NULL}}},
    {"mailgun", "Mailgun", "email", "Email through Mailgun's Messages API (US or EU region)",
     {{"api_key", "string", true, NULL},
      {"domain", "string", true, NULL},
      {"region", "string", false, MAILGUN_REGIONS},
      {"from", "string", true, NULL},
      {"from_name", "string", false, NULL},
      {"reply_to", "string", false, NULL},
      {"base_url", "string", false, NULL},
      {"webhook_signing_key", "string", false, NULL}}},
    {"twilio", "Twilio", "sms", "SMS through Twilio's Messages API",
     {{"account_sid", "string", true, NULL},
      {"auth_token", "string", true, NULL},
      {"from", "string", true, NULL},
      {"base_url", "string", false, NULL},
      {"status_callback_url", "string", false, NULL}}},
    {"ses", "Amazon SES", "email", "Email through Amazon SES API v2 SendEmail (SigV4 signed)",
     {{"access_key_id", "string", true, NULL},
      {"secret_access_key", "string", true, NULL},
      {"session_token", "string", false, NULL},
      {"region", "string", true, NULL},
      {"from", "string", true, NULL},
      {"from_name", "string", false, NULL},
      {"reply_to", "string", false, NULL},
      {"configuration_set", "string", false, NULL},
      {"base_url", "string", false, NULL},
      {"sns_topic_arn", "string", false, NULL}}},
    {"vonage", "Vonage", "sms", "SMS through Vonage's SMS API",
     {{"api_key", "string", true, NULL},
      {"api_secret", "string", true, NULL},
      {"from", "string", true, NULL},
      {"base_url", "string", false, NULL}}},
    {"messagebird", "MessageBird", "sms", "SMS through MessageBird's SMS Messaging API",
     {{"access_key", "string", true, NULL},
      {"originator", "string", true, NULL},
      {"base_url", "string", false, NULL}}},
    {"webhook", "Webhook", "webhook", "An HTTP request with the message as JSON, optionally signed",
     {{"url", "string", true, NULL},
      {"method", "string", false, METHOD_VALUES},
      {"headers", "object", false, NULL},
      {"secret", "string", false, NULL},
      {"authentication", "object", false, NULL}}},
    {"console", "Console", "email",
     "Writes messages to herald's log instead of sending (testing); any channel, email unless "
     "settings.channel says otherwise",
     {{"channel", "string", false, CHANNEL_VALUES}}},
};

/* add_object: append a new object to array arr and return it. */
static cJSON *add_object(cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, o);
    return o;
}

/* catalog_match: whether p passes GET /providers/catalog's filters: channel (exact,
 * case-insensitive), keys (comma-separated provider keys), name (case-insensitive
 * substring of the display name); NULL filters pass. */
static bool catalog_match(const struct provider_desc *p, const char *channel, const char *keys,
                          const char *name)
{
    if (channel && strcasecmp(channel, p->channel) != 0)
        return false;
    if (name && !strcasestr(p->name, name))
        return false;
    if (keys) {
        size_t klen = strlen(p->provider);
        for (const char *k = keys; *k;) {
            size_t n = strcspn(k, ",");
            if (n == klen && strncmp(k, p->provider, n) == 0)
                return true;
            k += n + (k[n] == ',');
        }
        return false;
    }
    return true;
}

/* GET /providers/catalog?channel&keys&name -> {paging, results}: one page (the catalog is
 * short), so paging.cursor is null and more false. */
void api_provider_catalog(void *vctx, struct http_req *req, struct http_resp *resp)
{
    const char *channel = http_req_query(req, "channel"), *keys = http_req_query(req, "keys");
    const char *name = http_req_query(req, "name");
    cJSON *out = cJSON_CreateObject(), *paging = cJSON_AddObjectToObject(out, "paging");
    cJSON *results = cJSON_AddArrayToObject(out, "results");
    cJSON_AddNullToObject(paging, "cursor");
    cJSON_AddFalseToObject(paging, "more");
    for (size_t i = 0; i < sizeof CATALOG / sizeof CATALOG[0]; i++) {
        const struct provider_desc *p = &CATALOG[i];
        cJSON *e, *settings;
        if (!catalog_match(p, channel, keys, name))
            continue;
        e = add_object(results);
        cJSON_AddStringToObject(e, "provider", p->provider);
        cJSON_AddStringToObject(e, "name", p->name);
        cJSON_AddStringToObject(e, "channel", p->channel);
        cJSON_AddStringToObject(e, "description", p->description);
        settings = cJSON_AddObjectToObject(e, "settings");
        for (size_t f = 0; f < sizeof p->fields / sizeof p->fields[0] && p->fields[f].name; f++) {
            const struct field_desc *fd = &p->fields[f];
            cJSON *o = cJSON_AddObjectToObject(settings, fd->name);
            cJSON_AddStringToObject(o, "type", fd->type);
            cJSON_AddBoolToObject(o, "required", fd->required);
            if (fd->values) {
                cJSON *vals = cJSON_AddArrayToObject(o, "values");
                for (size_t k = 0; fd->values[k]; k++)
                    cJSON_AddItemToArray(vals, cJSON_CreateString(fd->values[k]));
            }
        }
    }
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

/* ---- secrets ------------------------------------------------------------------------------ */

void providers_mask(const cJSON *secret, char out[PROVIDERS_MASK_MAX])
{
    const char *s, *tail;
    size_t chars = 0, len, back = 0;

    snprintf(out, PROVIDERS_MASK_MAX, MASK);
    if (!cJSON_IsString(secret))
        return;
    s = secret->valuestring;
    len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            chars++;
    if (chars < 8)
        return;
    /* the last 4 characters: step back over 4 lead bytes (whole UTF-8 sequences) */
    tail = s + len;
    while (back < 4 && tail > s) {
        tail--;
        if (((unsigned char)*tail & 0xC0) != 0x80)
            back++;
    }
    snprintf(out, PROVIDERS_MASK_MAX, MASK "%s", tail);
}

/* slot: for a secret name ("password", or dotted "authentication.password" for a key
 * inside an object setting), the object that holds it and the last key; NULL when the
 * path does not lead to an object. */
static cJSON *slot(const cJSON *settings, const char *name, char *key, size_t cap)
{
    const cJSON *o = settings;
    const char *dot;
    while ((dot = strchr(name, '.')) != NULL) {
        size_t n = (size_t)(dot - name);
        if (n >= cap)
            return NULL;
        memcpy(key, name, n);
        key[n] = '\0';
        o = json_member(o, key);
        name = dot + 1;
    }
    if (!cJSON_IsObject(o))
        return NULL;
    snprintf(key, cap, "%s", name);
    return (cJSON *)o;
}

void providers_mask_settings(cJSON *settings, const char *const *secret_fields)
{
    char m[PROVIDERS_MASK_MAX], key[64];
    cJSON *u;
    if (!cJSON_IsObject(settings) || !secret_fields)
        return;
    for (size_t i = 0; secret_fields[i]; i++) {
        cJSON *o = slot(settings, secret_fields[i], key, sizeof key);
        cJSON *v = json_member(o, key);
        if (o && strcmp(key, "*") == 0) {
            /* "headers.*": every value of that object */
            cJSON_ArrayForEach(v, o)
            {
                if (cJSON_IsString(v)) {
                    providers_mask(v, m);
                    cJSON_SetValuestring(v, m);
                }
            }
            continue;
        }
        if (!o || !v || cJSON_IsNull(v))
            continue;
        providers_mask(v, m);
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, cJSON_CreateString(m));
    }
    /* a password inside a URL setting (https://user:pass@host) */
    cJSON_ArrayForEach(u, settings)
    {
        char url[2100];
        if (cJSON_IsString(u) && strchr(u->valuestring, '@') &&
            http_client_url_mask_password(u->valuestring, url, sizeof url))
            cJSON_SetValuestring(u, url);
    }
}

/* keep_masked: for each string in object no that equals the mask of the same key's
 * string in oo (urls: the URL with its password masked; otherwise the value's mask),
 * put oo's value back (keep) or only name the first such key into found as
 * "<prefix><key>" and return true (!keep). */
static bool keep_masked(cJSON *no, const cJSON *oo, bool urls, bool keep, const char *prefix,
                        char *found, size_t cap)
{
    char m[2100];
    cJSON *nv;
    cJSON_ArrayForEach(nv, no)
    {
        const cJSON *ov = json_member(oo, nv->string);
        if (!cJSON_IsString(nv) || !cJSON_IsString(ov))
            continue;
        if (!urls)
            providers_mask(ov, m);
        else if (!http_client_url_mask_password(ov->valuestring, m, sizeof m))
            continue;
        if (strcmp(nv->valuestring, m) != 0)
            continue;
        if (!keep) {
            snprintf(found, cap, "%s%.64s", prefix, nv->string);
            return true;
        }
        cJSON_SetValuestring(nv, ov->valuestring);
    }
    return false;
}

/* walk_secrets: providers_keep_secrets (keep), or, without changing anything, the name
 * of the first secret new_settings sends back as the mask of old_settings' value into
 * found ("authentication.token", "headers.X-Api-Key") and true (!keep). */
static bool walk_secrets(cJSON *new_settings, const cJSON *old_settings,
                         const char *const *secret_fields, bool keep, char *found, size_t cap)
{
    char m[PROVIDERS_MASK_MAX], key[64], prefix[80];
    if (!cJSON_IsObject(new_settings) || !cJSON_IsObject(old_settings) || !secret_fields)
        return false;
    for (size_t i = 0; secret_fields[i]; i++) {
        cJSON *no = slot(new_settings, secret_fields[i], key, sizeof key);
        const cJSON *oo = slot(old_settings, secret_fields[i], key, sizeof key);
        const cJSON *nv = json_member(no, key);
        const cJSON *ov = json_member(oo, key);
        if (no && oo && strcmp(key, "*") == 0) {
            /* "headers.*": the prefix is the name without its "*" */
            snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(secret_fields[i]) - 1),
                     secret_fields[i]);
            if (keep_masked(no, oo, false, keep, prefix, found, cap))
                return true;
            continue;
        }
        if (!no || !oo || !cJSON_IsString(nv) || !ov || cJSON_IsNull(ov))
            continue;
        providers_mask(ov, m);
        if (strcmp(nv->valuestring, m) != 0)
            continue;
        if (!keep) {
            snprintf(found, cap, "%s", secret_fields[i]);
            return true;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(no, key, cJSON_Duplicate(ov, 1));
    }
    return keep_masked(new_settings, old_settings, true, keep, "", found, cap);
}

void providers_keep_secrets(cJSON *new_settings, const cJSON *old_settings,
                            const char *const *secret_fields)
{
    (void)walk_secrets(new_settings, old_settings, secret_fields, true, NULL, 0);
}

/* Settings that decide where a provider's secrets go: a secret sent back masked is kept
 * only while all of these are unchanged, else whoever may edit the provider could point
 * it at their own server and receive the stored secret. A provider missing here counts
 * every setting that is not a secret. */
static const struct {
    const char *provider;
    const char *fields[6];
} DESTINATIONS[] = {
    {"smtp", {"host", "port", "secure", "tls_verify", NULL}},
    {"sendgrid", {"base_url", NULL}},
    {"twilio", {"base_url", NULL}},
    {"postmark", {"base_url", NULL}},
    {"resend", {"base_url", NULL}},
    {"mailgun", {"base_url", "region", NULL}},
    {"ses", {"region", "base_url", NULL}},
    {"vonage", {"base_url", NULL}},
    {"messagebird", {"base_url", NULL}},
    {"webhook", {"url", "authentication.mode", NULL}},
    {"console", {NULL}},
};

/* at: the value at a (possibly dotted, one level) settings path, or NULL. */
static const cJSON *at(const cJSON *settings, const char *path)
{
    char key[64];
    const cJSON *o = slot(settings, path, key, sizeof key);
    return o ? json_member(o, key) : NULL;
}

static bool same(const cJSON *a, const cJSON *b)
{
    if (!a || cJSON_IsNull(a))
        return !b || cJSON_IsNull(b);
    return b && cJSON_Compare(a, b, true);
}

/* destination_moved: does new_settings send secrets anywhere else than old_settings?
 * Names the first changed setting into field. */
static bool destination_moved(const char *provider, const char *const *secret_fields,
                              const cJSON *new_settings, const cJSON *old_settings, char *field,
                              size_t cap)
{
    const cJSON *v;
    for (size_t i = 0; i < sizeof DESTINATIONS / sizeof DESTINATIONS[0]; i++) {
        if (strcmp(DESTINATIONS[i].provider, provider) != 0)
            continue;
        for (size_t f = 0; DESTINATIONS[i].fields[f]; f++) {
            const char *name = DESTINATIONS[i].fields[f];
            if (!same(at(new_settings, name), at(old_settings, name))) {
                snprintf(field, cap, "%s", name);
                return true;
            }
        }
        return false;
    }
    /* unknown here: any change of a setting that is not a secret */
    cJSON_ArrayForEach(v, new_settings)
    {
        bool secret = false;
        for (size_t i = 0; secret_fields && secret_fields[i] && !secret; i++) {
            size_t n = strlen(v->string);
            secret = strncmp(secret_fields[i], v->string, n) == 0 &&
                     (secret_fields[i][n] == '\0' || secret_fields[i][n] == '.');
        }
        if (!secret && !same(v, json_member(old_settings, v->string))) {
            snprintf(field, cap, "%.64s", v->string);
            return true;
        }
    }
    return false;
}

/* masked: a copy of a stored record fit to answer; for a provider herald no longer
 * knows, every setting is masked. Caller owns. */
static cJSON *masked(const cJSON *rec)
{
    cJSON *v = cJSON_Duplicate(rec, 1);
    cJSON *settings = json_member(v, "settings"), *s;
    const char *name = json_str(rec, "provider");
    const struct provider_ops *p = name ? provider_find(name) : NULL;
    char m[PROVIDERS_MASK_MAX];

    if (p) {
        providers_mask_settings(settings, p->secret_fields);
    } else if (cJSON_IsObject(settings)) {
        cJSON_ArrayForEach(s, settings) {
            providers_mask(s, m);
            cJSON_ReplaceItemInObjectCaseSensitive(settings, s->string, cJSON_CreateString(m));
        }
    }
    return v;
}

/* ---- order ---------------------------------------------------------------------------------- */

static int64_t num_or(const cJSON *o, const char *k, int64_t dflt)
{
    int64_t v;
    return json_i64(o, k, &v) ? v : dflt;
}

int providers_cmp(const void *pa, const void *pb)
{
    const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
    int ca = (int)channel_parse(json_str(a, "channel")), cb = (int)channel_parse(json_str(b, "channel"));
    int64_t x, y;
    const char *ia, *ib;

    if (ca != cb)
        return ca < cb ? -1 : 1;
    x = num_or(a, "priority", PRIORITY_DEFAULT);
    y = num_or(b, "priority", PRIORITY_DEFAULT);
    if (x != y)
        return x < y ? -1 : 1;
    x = num_or(a, "created", 0);
    y = num_or(b, "created", 0);
    if (x != y)
        return x < y ? -1 : 1;
    ia = json_str(a, "id");
    ib = json_str(b, "id");
    return strcmp(ia ? ia : "", ib ? ib : "");
}

/* load_all: every stored record (up to PROVIDERS_MAX + 1), sorted, as a JSON array the
 * caller owns; *more when there were more than PROVIDERS_MAX. */
static int load_all(struct store *s, struct arena *a, cJSON **out, bool *more)
{
    struct doc_rec *rows = NULL;
    size_t n = 0, k = 0;
    cJSON **recs = NULL;
    int rc;

    *out = NULL;
    *more = false;
    rc = store_doc_list(s, PROVIDERS_COLL, STR_NULL, STR_NULL, PROVIDERS_MAX + 1, a, &rows, &n);
    if (rc < 0)
        return rc;
    if (n > PROVIDERS_MAX) {
        n = PROVIDERS_MAX;
        *more = true;
    }
    recs = arena_alloc(a, (n + 1) * sizeof *recs);
    for (size_t i = 0; i < n; i++) {
        cJSON *r = cJSON_ParseWithLength(rows[i].body.p, rows[i].body.len);
        if (cJSON_IsObject(r))
            recs[k++] = r;
        else
            cJSON_Delete(r);
    }
    qsort(recs, k, sizeof *recs, providers_cmp);
    *out = cJSON_CreateArray();
    for (size_t i = 0; i < k; i++)
        cJSON_AddItemToArray(*out, recs[i]);
    return HR_OK;
}

/* ---- building a record ------------------------------------------------------------------- */

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static int unknown_provider(const char *name, struct herr *err)
{
    const struct provider_ops *const *all = provider_all();
    char known[200];
    struct buf b;
    int rc;

    buf_init(&b, sizeof known - 1);
    for (size_t i = 0; all && all[i]; i++)
        if (buf_printf(&b, "%s%s", i ? ", " : "", all[i]->name) < 0)
            break;
    str_copy(known, sizeof known, buf_str(&b));
    buf_cleanup(&b);
    if (name)
        rc = herr_set(err, HR_INVAL, "unknown provider \"%.64s\"; known providers: %s", name, known);
    else
        rc = herr_set(err, HR_INVAL, "provider is required; known providers: %s", known);
    return rc;
}

/* label: copy body's alias or title into rec. Absent: title is Courier's "Default
 * Configuration", alias is left out (the SDK types both as strings, never null). */
static int label(const cJSON *body, const char *key, cJSON *rec, struct herr *err)
{
    const cJSON *v = json_member(body, key);
    if (!v || cJSON_IsNull(v)) {
        if (strcmp(key, "title") == 0)
            cJSON_AddStringToObject(rec, key, "Default Configuration");
        return HR_OK;
    }
    if (!cJSON_IsString(v) || utf8_chars(v->valuestring) > LABEL_MAX_CHARS)
        return herr_set(err, HR_INVAL, "%s must be a string of at most %d characters", key,
                        LABEL_MAX_CHARS);
    cJSON_AddStringToObject(rec, key, v->valuestring);
    return HR_OK;
}

/* build: the record for body (a POST or PUT), keeping old's secrets sent back masked
 * and its creation time. *out owned by the caller. HR_INVAL with err. */
static int build(const cJSON *body, const cJSON *old, struct str id, int64_t now_ms, cJSON **out,
                 struct herr *err)
{
    const char *name = json_str(body, "provider");
    const struct provider_ops *p = name ? provider_find(name) : NULL;
    const cJSON *settings_in = json_member(body, "settings");
    const cJSON *prio = json_member(body, "priority");
    const cJSON *enabled = json_member(body, "enabled");
    const cJSON *limits = json_member(body, "limits");
    struct limit_cfg lc;
    const char *old_name = json_str(old, "provider");
    cJSON *rec = NULL, *settings = NULL;
    char idb[RESOURCE_ID_MAX + 1];
    enum channel ch;
    double pv = PRIORITY_DEFAULT;
    int rc = HR_OK;

    *out = NULL;
    if (!p) {
        rc = unknown_provider(name, err);
        goto out;
    }
    if (settings_in && !cJSON_IsNull(settings_in) && !cJSON_IsObject(settings_in)) {
        rc = herr_set(err, HR_INVAL, "settings must be an object");
        goto out;
    }
    settings = cJSON_IsObject(settings_in) ? cJSON_Duplicate(settings_in, 1) : cJSON_CreateObject();
    if (old && old_name && strcmp(old_name, p->name) == 0) {
        const cJSON *os = json_member(old, "settings");
        cJSON *kept = cJSON_Duplicate(settings, 1);
        char moved[80], secret[160];
        bool refuse;
        /* a masked secret stays only where it went before (compared with the secrets put
         * back, so a URL shown with its password masked counts as unchanged) */
        providers_keep_secrets(kept, os, p->secret_fields);
        refuse = destination_moved(p->name, p->secret_fields, kept, os, moved, sizeof moved) &&
                 walk_secrets(settings, os, p->secret_fields, false, secret, sizeof secret);
        cJSON_Delete(settings);
        settings = kept;
        if (refuse) {
            rc = herr_set(err, HR_INVAL,
                          "settings.%s is sent masked but settings.%s changed: send the secret "
                          "again (a stored secret is kept only for the same destination)",
                          secret, moved);
            goto out;
        }
    }
    if (p->validate) {
        struct herr verr;
        herr_clear(&verr);
        if (p->validate(settings, &verr) < 0) {
            rc = herr_set(err, HR_INVAL, "settings: %s",
                          verr.msg[0] ? verr.msg : "invalid provider settings");
            goto out;
        }
    }
    { /* the settings its delivery receipts are verified with (receipts.c) */
        struct herr verr;
        herr_clear(&verr);
        if (api_receipt_settings_check(p->name, settings, &verr) < 0) {
            rc = herr_set(err, HR_INVAL, "settings.%s", verr.msg);
            goto out;
        }
    }
    ch = p->channel;
    if (ch == CH_NONE) {
        const char *c = json_str(body, "channel");
        if (!c)
            c = json_str(settings, "channel");
        ch = c ? channel_parse(c) : CH_EMAIL; /* console: email unless told (the SDK's
                                                  create shape has no channel) */
        if (ch == CH_NONE) {
            rc = herr_set(err, HR_INVAL,
                          "channel is required for provider %s: email, sms, push, "
                          "direct_message or webhook",
                          p->name);
            goto out;
        }
    }
    if (prio && !cJSON_IsNull(prio)) {
        pv = cJSON_IsNumber(prio) ? prio->valuedouble : -1;
        if (pv < 0 || pv > PRIORITY_MAX || pv != (double)(int64_t)pv) {
            rc = herr_set(err, HR_INVAL, "priority must be an integer from 0 to %d", PRIORITY_MAX);
            goto out;
        }
    }
    if (enabled && !cJSON_IsNull(enabled) && !cJSON_IsBool(enabled)) {
        rc = herr_set(err, HR_INVAL, "enabled must be true or false");
        goto out;
    }
    rc = limit_cfg_parse(limits, &lc, err);
    if (rc < 0)
        goto out;
    str_copy(idb, sizeof idb, id);
    rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "id", idb);
    cJSON_AddStringToObject(rec, "provider", p->name);
    cJSON_AddStringToObject(rec, "channel", channel_name(ch));
    if ((rc = label(body, "alias", rec, err)) < 0 || (rc = label(body, "title", rec, err)) < 0)
        goto out;
    cJSON_AddItemToObject(rec, "settings", settings);
    settings = NULL;
    cJSON_AddNumberToObject(rec, "priority", pv);
    cJSON_AddBoolToObject(rec, "enabled", !cJSON_IsFalse(enabled));
    if (limits && !cJSON_IsNull(limits)) { /* only the limits given, as numbers */
        cJSON *l = cJSON_AddObjectToObject(rec, "limits");
        if (lc.concurrency > 0)
            cJSON_AddNumberToObject(l, "concurrency", lc.concurrency);
        if (lc.per_second > 0)
            cJSON_AddNumberToObject(l, "per_second", lc.per_second);
        if (lc.burst > 0)
            cJSON_AddNumberToObject(l, "burst", lc.burst);
    }
    cJSON_AddNumberToObject(rec, "created", (double)(old ? num_or(old, "created", now_ms) : now_ms));
    cJSON_AddNumberToObject(rec, "updated", (double)now_ms);
    *out = rec;
    rec = NULL;
out:
    cJSON_Delete(settings);
    cJSON_Delete(rec);
    return rc;
}

/* ---- changes ----------------------------------------------------------------------------- */

struct change_arg {
    bool creating;
    struct str id;
    const cJSON *body;
    int64_t now_ms;
    cJSON *rec;          /* out: the stored record (secrets in full); the caller frees it */
    struct herr err;
};

static int change_tx(struct store_txn *t, void *varg)
{
    struct change_arg *a = varg;
    struct arena *ar = arena_new(4096);
    struct doc_rec d;
    cJSON *old = NULL;
    char *s = NULL;
    int rc;

    cJSON_Delete(a->rec); /* in case the store runs fn again */
    a->rec = NULL;
    rc = store_doc_get_txn(t, PROVIDERS_COLL, a->id, ar, &d);
    if (a->creating && rc == HR_OK) {
        rc = herr_set(&a->err, HR_CONFLICT, "provider %.*s already exists", STR_FMT(a->id));
        goto out;
    }
    if (!a->creating && rc == HR_NOTFOUND) {
        rc = herr_set(&a->err, HR_NOTFOUND, "provider %.*s not found", STR_FMT(a->id));
        goto out;
    }
    if (rc < 0 && rc != HR_NOTFOUND)
        goto out;
    if (rc == HR_OK)
        old = cJSON_ParseWithLength(d.body.p, d.body.len);
    rc = build(a->body, old, a->id, a->now_ms, &a->rec, &a->err);
    if (rc < 0)
        goto out;
    s = json_print(a->rec);
    defcache_changed(); /* routes' cached provider lists (engine_channel_providers) */
    rc = store_doc_put(t, PROVIDERS_COLL, a->id, str_c(s), a->now_ms, NULL);
    if (rc == HR_TOOBIG)
        herr_set(&a->err, rc, "the provider configuration is larger than %d bytes",
                 TEMPLATE_BODY_MAX);
out:
    if (rc < 0) {
        cJSON_Delete(a->rec);
        a->rec = NULL;
    }
    free(s);
    cJSON_Delete(old);
    arena_free(ar);
    return rc;
}

static bool id_ok(struct http_req *req, struct http_resp *resp)
{
    if (req->nparams < 1 || !template_id_valid(req->params[0])) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "a provider id is 1 to %d characters of [A-Za-z0-9_.:-]", RESOURCE_ID_MAX);
        return false;
    }
    return true;
}

static void save(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp, bool creating)
{
    char idbuf[RESOURCE_ID_NEW_LEN + 1];
    cJSON *body = NULL, *all = NULL, *v = NULL;
    struct change_arg a;
    struct herr err;
    bool more;
    int rc;

    memset(&a, 0, sizeof a);
    if ((!creating && !id_ok(req, resp)) || api_parse_json(req, resp, &body) < 0)
        goto out;
    if (creating) {
        /* a soft cap: read outside the write, so racing creates may pass it by a few */
        rc = load_all(ctx->store, req->arena, &all, &more);
        if (rc < 0) {
            api_error_rc(resp, rc, NULL);
            goto out;
        }
        if (cJSON_GetArraySize(all) >= PROVIDERS_MAX) {
            http_resp_error(resp, 409, "invalid_request_error",
                            "at most %d providers may be configured", PROVIDERS_MAX);
            goto out;
        }
        template_id_new("pr_", idbuf, sizeof idbuf);
        a.id = str_c(idbuf);
    } else {
        a.id = req->params[0];
    }
    a.creating = creating;
    a.body = body;
    a.now_ms = hclock_now(ctx->clock);
    herr_clear(&a.err);
    herr_clear(&err);
    rc = store_write(ctx->store, change_tx, &a, &err);
    defcache_changed(); /* again after the commit: a load that raced it is stale too */
    if (rc < 0) {
        api_error_rc(resp, rc, a.err.msg[0] ? &a.err : &err);
        goto out;
    }
    v = masked(a.rec);
    http_resp_json(resp, 200, v);
out:
    cJSON_Delete(v);
    cJSON_Delete(a.rec);
    cJSON_Delete(all);
    cJSON_Delete(body);
}

void api_provider_create(void *ctx, struct http_req *req, struct http_resp *resp)
{
    save(ctx, req, resp, true);
}

void api_provider_replace(void *ctx, struct http_req *req, struct http_resp *resp)
{
    save(ctx, req, resp, false);
}

/* ---- reads and delete ------------------------------------------------------------------- */

void api_provider_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct doc_rec d;
    cJSON *rec = NULL, *v = NULL;
    int rc;

    if (!id_ok(req, resp))
        return;
    rc = store_doc_get(ctx->store, PROVIDERS_COLL, req->params[0], req->arena, &d);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "provider %.*s not found",
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    rec = cJSON_ParseWithLength(d.body.p, d.body.len);
    if (!cJSON_IsObject(rec)) {
        api_error_rc(resp, HR_IO, NULL);
        goto out;
    }
    v = masked(rec);
    http_resp_json(resp, 200, v);
out:
    cJSON_Delete(v);
    cJSON_Delete(rec);
}

void api_provider_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *all = NULL, *out = NULL, *results, *paging, *r;
    bool more;
    int rc = load_all(ctx->store, req->arena, &all, &more);

    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    paging = cJSON_AddObjectToObject(out, "paging");
    cJSON_AddNullToObject(paging, "cursor");
    cJSON_AddBoolToObject(paging, "more", more);
    results = cJSON_AddArrayToObject(out, "results");
    cJSON_ArrayForEach(r, all)
        cJSON_AddItemToArray(results, masked(r));
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
    cJSON_Delete(all);
}

void api_provider_delete(void *vctx, struct http_req *req, struct http_resp *resp)
{
    if (id_ok(req, resp))
        api_doc_delete(vctx, req, resp, PROVIDERS_COLL, "provider");
}
