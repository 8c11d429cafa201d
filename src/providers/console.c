/* console.c: the development provider. It delivers nothing: it logs one line per
 * message (ids, channel, address, the start of the subject or text) and reports SENT.
 * Accepts every channel. */
#include "../util/json.h"
#include "../util/log.h"
#include "provider.h"

#include <stdio.h>
#include <string.h>

#define CONSOLE_SNIPPET 80 /* bytes of subject/title/text logged */

static const char *const console_secrets[] = {NULL};

static int console_validate(const cJSON *settings, struct herr *err)
{
    if (settings && !cJSON_IsObject(settings) && !cJSON_IsNull(settings))
        return herr_set(err, HR_INVAL, "settings must be an object");
    return HR_OK;
}

static int console_addressable(const cJSON *profile, const cJSON *settings)
{
    return 1;
}

/* address: the one field of the profile that addresses the channel (nothing more of
 * the recipient is logged). */
static const char *address(const cJSON *profile, enum channel ch)
{
    const char *a = NULL;
    if (ch == CH_EMAIL)
        a = json_str(profile, "email");
    else if (ch == CH_SMS)
        a = json_str(profile, "phone_number");
    else if (ch == CH_WEBHOOK)
        a = json_str(json_obj(profile, "webhook"), "url");
    if (!a)
        a = json_str(profile, "user_id");
    return a ? a : "";
}

/* snippet: quote the first CONSOLE_SNIPPET bytes of s for a log line, never cutting a
 * UTF-8 character in half. */
static void snippet(char *out, size_t cap, const char *s)
{
    char cut[CONSOLE_SNIPPET + 1];
    size_t n = s ? strlen(s) : 0;
    if (n > CONSOLE_SNIPPET) {
        n = CONSOLE_SNIPPET;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(cut, s ? s : "", n);
    cut[n] = '\0';
    log_q(out, cap, cut);
}

static void console_send(const struct delivery *d, struct delivery_result *r)
{
    const struct content *c = d->content;
    enum channel ch = c ? c->channel : CH_NONE;
    char to[300], subject[4 * CONSOLE_SNIPPET + 8], text[4 * CONSOLE_SNIPPET + 8];
    const char *headline = c ? (c->subject ? c->subject : c->title) : NULL;
    const char *body = c ? (c->text ? c->text : c->body) : NULL;

    memset(r, 0, sizeof *r);
    log_q(to, sizeof to, address(d->profile, ch));
    snippet(subject, sizeof subject, headline);
    snippet(text, sizeof text, body);
    LOG_I("provider.console", "message_id=%s provider=%s channel=%s to=%s subject=%s text=%s",
          d->message_id ? d->message_id : "", d->provider_id ? d->provider_id : "console",
          channel_name(ch), to, subject, text);
    r->outcome = DELIVERY_SENT;
    snprintf(r->reference, sizeof r->reference, "console-%s",
             d->message_id ? d->message_id : "");
}

const struct provider_ops provider_console = {
    .version = 1,
    .name = "console",
    .channel = CH_NONE, /* any channel */
    .secret_fields = console_secrets,
    .validate = console_validate,
    .addressable = console_addressable,
    .send = console_send,
};
