/* email_api.c: the pieces the HTTP email API providers share (see email_api.h). */
#include "email_api.h"

#include "../util/json.h"
#include "../util/xalloc.h"
#include "http_client.h"
#include "mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int email_api_conf_parse(const cJSON *s, const char *key_field, struct email_api_conf *c,
                         struct herr *err)
{
    int rc;
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(s))
        return herr_set(err, HR_INVAL, "settings must be an object");
    rc = http_client_setting_str(s, "settings", key_field, true, &c->key, err);
    if (rc == HR_OK && !http_client_header_value_ok(c->key))
        rc = herr_set(err, HR_INVAL, "settings.%s must not contain control characters",
                      key_field);
    if (rc == HR_OK)
        rc = mime_sender_parse(s, &c->from, &c->from_name, &c->reply_to, err);
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "base_url", false, &c->base_url, err);
    if (rc == HR_OK && c->base_url && !http_client_url_ok(c->base_url))
        rc = herr_set(err, HR_INVAL, "settings.base_url must be an http:// or https:// URL");
    return rc;
}

int email_api_addressable(const cJSON *profile, const cJSON *settings)
{
    (void)settings;
    return mime_addr_valid(json_str(profile, "email"));
}

const char *email_api_begin(const struct delivery *d, int parse_rc, const struct herr *err,
                            const char *who, struct delivery_result *r)
{
    const char *to = json_str(d->profile, "email");
    r->outcome = DELIVERY_PERMANENT;
    if (parse_rc < 0) {
        snprintf(r->reason, sizeof r->reason, "%s settings: %s", who, err->msg);
        return NULL;
    }
    if (!mime_addr_valid(to)) {
        snprintf(r->reason, sizeof r->reason, "invalid email address");
        return NULL;
    }
    if (!d->content || !((d->content->text && d->content->text[0]) ||
                         (d->content->html && d->content->html[0]))) {
        snprintf(r->reason, sizeof r->reason, "no content to send");
        return NULL;
    }
    return to;
}

/* name_is_phrase: true when name can stand unquoted before "<addr>": words of RFC 5322
 * atext (and 8-bit UTF-8) separated by single spaces. */
static bool name_is_phrase(const char *name)
{
    const char *specials = "()<>[]:;@\\,.\"";
    if (!name[0] || name[0] == ' ')
        return false;
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f || strchr(specials, ch))
            return false;
        if (ch == ' ' && (p[1] == ' ' || p[1] == '\0'))
            return false;
    }
    return true;
}

char *email_api_mailbox(const char *name, const char *addr)
{
    size_t n;
    char *out, *o;
    if (!name || !name[0])
        return xstrdup(addr);
    n = strlen(name) * 2 + strlen(addr) + 6;
    out = xmalloc(n);
    if (name_is_phrase(name)) {
        snprintf(out, n, "%s <%s>", name, addr);
        return out;
    }
    o = out;
    *o++ = '"';
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            *o++ = '\\';
        *o++ = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    snprintf(o, n - (size_t)(o - out), "\" <%s>", addr);
    return out;
}

int email_api_post(const struct delivery *d, const struct email_api_conf *c,
                   const struct email_api_post *p, struct transport_req *req,
                   struct delivery_result *r)
{
    const char *secrets[] = {c->key, NULL};
    const char *base = c->base_url ? c->base_url : p->default_base;
    size_t blen = strlen(base);
    struct buf url;
    int rc;
    buf_init(&url, 4096);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    rc = buf_printf(&url, "%.*s%s", (int)blen, base, p->path);
    if (rc < 0) {
        r->outcome = DELIVERY_PERMANENT;
        snprintf(r->reason, sizeof r->reason, "%s settings: base_url is too long", p->who);
        rc = HR_INVAL;
    } else {
        struct http_client_req hreq = {
            .url = buf_cstr(&url),
            .content_type = p->content_type,
            .body = p->body,
            .headers = p->hdrs,
            .username = p->user,
            .password = p->user ? c->key : NULL,
            .timeout_ms = d->timeout_ms,
            .now_ms = d->now_ms,
            /* a base_url is chosen through the API: the egress guard checks it */
            .guard = c->base_url ? p->who : NULL,
            .secrets = secrets,
        };
        transport_req_from_http(req, &hreq);
    }
    buf_cleanup(&url);
    return rc;
}

void email_api_reference(struct delivery_result *r, const char *id, size_t n)
{
    if (id)
        http_client_text(r->reference, sizeof r->reference, (struct str){id, n},
                         sizeof r->reference - 1);
}

void email_api_reason(struct delivery_result *r, const char *who, int status, const char *msg,
                      const char *detail)
{
    char text[256], dtext[64];
    if (!msg)
        return;
    http_client_text(text, sizeof text, str_c(msg), 200);
    if (detail && detail[0]) {
        http_client_text(dtext, sizeof dtext, str_c(detail), 60);
        snprintf(r->reason, sizeof r->reason, "%s %d: %s (%s)", who, status, text, dtext);
    } else {
        snprintf(r->reason, sizeof r->reason, "%s %d: %s", who, status, text);
    }
}

bool email_api_list_unsub_ok(const struct content *ct)
{
    if (!ct || !ct->list_unsub || !ct->list_unsub[0] || strlen(ct->list_unsub) > EMAIL_LIST_UNSUB_MAX)
        return false;
    for (const char *p = ct->list_unsub; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false; /* never a header split */
    return true;
}

void email_api_list_unsub(const struct content *ct, cJSON *parent, const char *member,
                          bool pairs)
{
    static const char *const names[2] = {"List-Unsubscribe", "List-Unsubscribe-Post"};
    const char *values[2] = {ct ? ct->list_unsub : NULL, EMAIL_LIST_UNSUB_POST};
    cJSON *h;
    if (!email_api_list_unsub_ok(ct))
        return;
    h = pairs ? cJSON_AddArrayToObject(parent, member) : cJSON_AddObjectToObject(parent, member);
    for (int i = 0; i < 2; i++) {
        if (pairs) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "Name", names[i]);
            cJSON_AddStringToObject(x, "Value", values[i]);
            cJSON_AddItemToArray(h, x);
        } else {
            cJSON_AddStringToObject(h, names[i], values[i]);
        }
    }
}
