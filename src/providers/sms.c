/* sms.c: the phone number every SMS provider reads (see sms.h). */
#include "sms.h"

#include "../util/json.h"
#include "http_client.h"

#include <stdio.h>
#include <string.h>

const char *sms_phone(const cJSON *profile)
{
    const char *p = json_str(profile, "phone_number");
    if (!p || !p[0] || strlen(p) > 64 || !http_client_header_value_ok(p))
        return NULL;
    return p;
}

const char *sms_msisdn(const char *phone)
{
    return phone && phone[0] == '+' ? phone + 1 : phone;
}

int sms_recipient(const struct delivery *d, const char **to, const char **text,
                  struct delivery_result *r)
{
    *to = sms_phone(d->profile);
    *text = d->content ? d->content->text : NULL;
    r->outcome = DELIVERY_PERMANENT;
    if (!*to) {
        snprintf(r->reason, sizeof r->reason, "no usable phone_number in the profile");
        return HR_INVAL;
    }
    if (!*text || !(*text)[0]) {
        snprintf(r->reason, sizeof r->reason, "no text to send");
        return HR_INVAL;
    }
    return HR_OK;
}
