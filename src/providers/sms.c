/* sms.c: the phone number every SMS provider reads (see sms.h). */
#include "sms.h"

#include "../util/json.h"
#include "http_client.h"

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
