/* receipt_sig.h: how each provider signs its delivery receipts, checked byte for byte.
 * Pure functions over bytes (no store, no HTTP server): src/api/receipts.c calls them with
 * the request's headers and raw body, tests/unit/api/test_receipt_sig.c with the
 * providers' published examples. Each returns HR_OK when the signature holds, HR_PERM
 * when it does not (or is missing or malformed), HR_INVAL when the configured key is
 * unusable. The docs followed are named beside each function. */
#ifndef HERALD_API_RECEIPT_SIG_H
#define HERALD_API_RECEIPT_SIG_H

#include "../util/rc.h"
#include "../util/str.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECEIPT_TOLERANCE_S 300          /* svix, SendGrid, Mailgun: +-5 minutes */
#define RECEIPT_SNS_TOLERANCE_S 3600     /* SNS retries an HTTP endpoint for up to an hour */
#define RECEIPT_FORM_MAX 64              /* form parameters of one Twilio callback */

/* receipt_ts_fresh: ts (decimal seconds) is within tolerance_s of now_ms. */
bool receipt_ts_fresh(const char *ts, int64_t now_ms, int64_t tolerance_s);

/* SendGrid Event Webhook, "Getting Started with the Event Webhook Security Features"
 * (twilio.com/docs/sendgrid/for-developers/tracking-events/
 * getting-started-event-webhook-security-features): ECDSA P-256 with SHA-256 over
 * timestamp || body; the signature (X-Twilio-Email-Event-Webhook-Signature) is base64 DER,
 * the verification key base64 DER SubjectPublicKeyInfo (PEM armour accepted too). */
int receipt_sig_sendgrid(const char *public_key, const char *sig_b64, const char *ts,
                         struct str body);

/* Twilio, "Secure webhooks" (twilio.com/docs/usage/webhooks/webhooks-security):
 * base64 HMAC-SHA1(auth token, url || for each POST parameter sorted by name: name ||
 * value). names/values: n decoded form parameters. */
int receipt_sig_twilio(const char *auth_token, const char *url, const char *const *names,
                       const char *const *values, size_t n, const char *sig_b64);

/* Svix (Resend), "Verifying Webhooks Manually" (docs.svix.com/receiving/verifying-payloads/
 * how-manual): key = base64 of the secret after "whsec_"; base64 HMAC-SHA256(key,
 * id "." timestamp "." body); svix-signature is a space-separated list of "v1,<sig>", one
 * match suffices. The timestamp check is the caller's (receipt_ts_fresh). */
int receipt_sig_svix(const char *secret, const char *id, const char *ts, struct str body,
                     const char *sig_header);

/* Mailgun, "Securing Webhooks" (documentation.mailgun.com/docs/mailgun/user-manual/
 * webhooks/securing-webhooks): hex HMAC-SHA256(webhook signing key, timestamp || token). */
int receipt_sig_mailgun(const char *signing_key, const char *ts, const char *token,
                        const char *sig_hex);

/* Postmark, "Webhooks overview" (postmarkapp.com/developer/webhooks/webhooks-overview):
 * no signature; the webhook URL carries HTTP Basic credentials. auth_header is the
 * Authorization header (may be NULL). Constant-time compare. */
int receipt_sig_basic(const char *auth_header, const char *user, const char *password);

/* Amazon SNS, "Verifying the signatures of Amazon SNS messages"
 * (docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html): the string to
 * sign is "Name\nvalue\n" for Message, MessageId, Subject (when present), Timestamp,
 * TopicArn, Type (notifications) or Message, MessageId, SubscribeURL, Timestamp, Token,
 * TopicArn, Type (subscription messages); SignatureVersion 1 is RSA SHA-1, 2 RSA SHA-256,
 * with the public key of the PEM certificate at SigningCertURL. */
int receipt_sns_string_to_sign(const cJSON *msg, char **out);
int receipt_sig_sns(const cJSON *msg, const char *cert_pem, size_t cert_len);

/* receipt_sns_url_ok: url may be fetched for a certificate or a subscription: with
 * allow_prefix NULL or "", https://sns.<region>.amazonaws.com/ (region of [a-z0-9-]) and,
 * for a certificate, a path ending ".pem"; with allow_prefix set (an operator's or a test's
 * override, HERALD_SNS_URL_PREFIX), a URL starting with it. */
bool receipt_sns_url_ok(const char *url, const char *allow_prefix, bool cert);

/* receipt_form_parse: split an application/x-www-form-urlencoded body into at most max
 * decoded names and values (each NUL-terminated, in a; '+' is a space). Returns the count,
 * or HR_INVAL for a malformed or too long body. */
struct arena;
int receipt_form_parse(struct str body, struct arena *a, const char **names, const char **values,
                       size_t max);

#endif
