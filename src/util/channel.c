/* channel.c: channel names and content cleanup. */
#include "channel.h"

#include <stdlib.h>
#include <string.h>

enum channel channel_parse(const char *name)
{
    if (!name)
        return CH_NONE;
    if (strcmp(name, "email") == 0)
        return CH_EMAIL;
    if (strcmp(name, "sms") == 0)
        return CH_SMS;
    if (strcmp(name, "push") == 0)
        return CH_PUSH;
    if (strcmp(name, "direct_message") == 0 || strcmp(name, "chat") == 0)
        return CH_CHAT;
    if (strcmp(name, "webhook") == 0)
        return CH_WEBHOOK;
    return CH_NONE;
}

const char *channel_name(enum channel ch)
{
    static const char *names[] = {"none", "email", "sms", "push", "direct_message", "webhook"};
    return (unsigned)ch < CH_COUNT ? names[ch] : "none";
}

void content_cleanup(struct content *c)
{
    if (!c)
        return;
    free(c->subject);
    free(c->html);
    free(c->text);
    free(c->title);
    free(c->body);
    free(c->list_unsub);
    cJSON_Delete(c->json);
    memset(c, 0, sizeof *c);
}
