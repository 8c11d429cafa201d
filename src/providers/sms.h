/* sms.h: what the SMS providers (Twilio, Vonage, MessageBird) share: the recipient's
 * phone number read from the profile the same way for all. Pure; any thread. */
#ifndef HERALD_PROVIDERS_SMS_H
#define HERALD_PROVIDERS_SMS_H

#include "provider.h"

#include <cjson/cJSON.h>

/* sms_phone: the profile's phone_number when it is a usable one (non-empty, at most 64
 * bytes, no control characters), else NULL. Points into profile. */
const char *sms_phone(const cJSON *profile);

/* sms_recipient: the phone number and the text of an SMS delivery: HR_OK with *to and
 * *text set (pointing into d), or HR_INVAL with r PERMANENT and its reason set (no usable
 * phone_number, no text). */
int sms_recipient(const struct delivery *d, const char **to, const char **text,
                  struct delivery_result *r);

/* sms_msisdn: phone without its leading '+' (the E.164 digits that Vonage and
 * MessageBird take: "+447700900000" -> "447700900000"). Points into phone. */
const char *sms_msisdn(const char *phone);

#endif
