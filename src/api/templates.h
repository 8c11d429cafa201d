/* templates.h: Courier's configuration resources kept in the document store:
 * notification templates (notifications.c), brands (brands.c) and provider
 * configurations (providers_api.c). Declares their HTTP handlers, the helpers the
 * sending engine reads them through, and the pure checks the unit tests drive.
 *
 * Storage (the engine reads exactly this):
 *   "notifications"          id = template id     body = the draft
 *   "notification_versions"  id = "<id>@vNNN"      body = one published snapshot
 *   "brands"                 id = brand id         body = the brand
 *   "providers"              id = "pr_..."          body = the configuration, secrets in full */
#ifndef HERALD_API_TEMPLATES_H
#define HERALD_API_TEMPLATES_H

#include "api.h"

#include "../util/channel.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define TEMPLATES_COLL "notifications"
#define TEMPLATES_VERSIONS_COLL "notification_versions"
#define BRANDS_COLL "brands"
#define PROVIDERS_COLL "providers"

#define RESOURCE_ID_MAX 128          /* ids in paths: [A-Za-z0-9_.:-]{1,128} */
#define RESOURCE_ID_NEW_LEN 29       /* "nt_" + 26 characters */
#define TEMPLATE_BODY_MAX (1024 * 1024)
#define TEMPLATE_VERSIONS_MAX 999    /* v001 .. v999 */

/* ---- shared helpers (notifications.c) ----------------------------------------------- */

/* template_id_valid: does id match [A-Za-z0-9_.:-]{1,128}? Any thread. */
bool template_id_valid(struct str id);
/* template_id_new: prefix (e.g. "nt_") + 26 random characters of [a-z0-9] into out
 * (cap bytes, >= strlen(prefix) + 27). Any thread. */
void template_id_new(const char *prefix, char *out, size_t cap);
/* template_page_args: read ?limit= (1..max, default dflt) and ?cursor= (an id or
 * empty). On a bad value answers 400 on resp and returns HR_INVAL. *cursor lives in
 * the request. */
int template_page_args(struct http_req *req, struct http_resp *resp, size_t dflt, size_t max,
                       size_t *limit, struct str *cursor);

/* template_fields: check Courier's `notification` payload {name, tags?, brand?,
 * subscription?, routing?, content} (content through elemental_validate) and return
 * its normalised copy with every member present (absent ones as [] or null), owned by
 * the caller. NULL with err when invalid (HR_INVAL, or HR_TOOBIG when the content is
 * over an Elemental cap). Any thread. */
cJSON *template_fields(const cJSON *notification, struct herr *err);
/* template_same: do two templates (drafts, snapshots or field sets) carry the same
 * name, tags, brand, subscription, routing and content? */
bool template_same(const cJSON *a, const cJSON *b);
/* template_version_parse: "v001".."v999" -> 1..999; 0 when malformed. */
int template_version_parse(const char *s);


/* ---- brands.c ---------------------------------------------------------------------- */

/* brands_check: validate a POST (creating) or PUT body: name required (1..256
 * characters), id (create only) an id as template_id_valid, settings and snippets
 * objects or null with settings.colors.* strings, settings.email.header.logo.href an
 * http(s) URL, snippets.items [{name, value}] strings. HR_INVAL with err. */
int brands_check(const cJSON *body, bool creating, struct herr *err);

/* ---- providers_api.c ---------------------------------------------------------------- */

#define PROVIDERS_MASK_MAX 24

/* providers_mask: the shown form of a secret: "****" + its last 4 characters, or
 * "****" for a value shorter than 8 characters or not a string, into out. */
void providers_mask(const cJSON *secret, char out[PROVIDERS_MASK_MAX]);
/* providers_mask_settings: replace every secret_fields member of settings (in place)
 * by its mask. secret_fields is NULL-ended and may be NULL; a dotted name
 * ("authentication.password") names a key inside an object setting, and "name.*" every
 * string in that object. A top-level string setting that is a URL with a password
 * (https://user:pass@host) shows "****" in place of the password. */
void providers_mask_settings(cJSON *settings, const char *const *secret_fields);
/* providers_keep_secrets: in new_settings (changed in place), a secret member (or URL
 * setting) whose value equals the mask of old_settings' value takes back the stored
 * value, so a client may GET, edit and PUT. */
void providers_keep_secrets(cJSON *new_settings, const cJSON *old_settings,
                            const char *const *secret_fields);
/* providers_cmp: order of two provider records: channel (enum order), priority
 * (lower first), created, id. For qsort over `const cJSON *`. */
int providers_cmp(const void *a, const void *b);


/* ---- handlers ------------------------------------------------------------------------ */

void api_notification_create(void *ctx, struct http_req *req, struct http_resp *resp);
void api_notification_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_notification_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_notification_replace(void *ctx, struct http_req *req, struct http_resp *resp);
void api_notification_archive(void *ctx, struct http_req *req, struct http_resp *resp);
void api_notification_publish(void *ctx, struct http_req *req, struct http_resp *resp);
void api_notification_versions(void *ctx, struct http_req *req, struct http_resp *resp);

void api_brand_create(void *ctx, struct http_req *req, struct http_resp *resp);
void api_brand_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_brand_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_brand_replace(void *ctx, struct http_req *req, struct http_resp *resp);
void api_brand_delete(void *ctx, struct http_req *req, struct http_resp *resp);

void api_provider_create(void *ctx, struct http_req *req, struct http_resp *resp);
void api_provider_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_provider_catalog(void *ctx, struct http_req *req, struct http_resp *resp);
void api_provider_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_provider_replace(void *ctx, struct http_req *req, struct http_resp *resp);
void api_provider_delete(void *ctx, struct http_req *req, struct http_resp *resp);

#endif
