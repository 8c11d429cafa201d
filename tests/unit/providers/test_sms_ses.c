/* test_sms_ses.c: the ses, vonage and messagebird providers without a network: build()
 * must produce the exact request each API documents (URL, headers, auth, body bytes; for
 * SES a SigV4 signature computed independently, outside herald, for the fixed date and
 * body), and classify() must sort each kind of answer (2xx with the provider's id, 429
 * with Retry-After, throttling inside a 200 or a 400, 4xx with the provider's own words,
 * 5xx, no answer) into SENT / TRANSIENT / PERMANENT. Plus validate() and addressable(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/providers/http_client.h"
#include "../../../src/providers/provider.h"
#include "../../../src/providers/transport.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NOW_MS 1764901800000LL /* 2025-12-05T02:30:00Z */

/* hdr: the value of header `name` in req (NULL when absent). */
static const char *hdr(const struct transport_req *req, const char *name)
{
    size_t n = strlen(name);
    for (const struct curl_slist *l = req->headers; l; l = l->next)
        if (strncasecmp(l->data, name, n) == 0 && l->data[n] == ':')
            return l->data[n + 1] == ' ' ? l->data + n + 2 : l->data + n + 1;
    return NULL;
}

struct fixture {
    cJSON *settings, *profile;
    struct content content;
    struct delivery d;
    struct transport_req req;
    struct delivery_result r;
};

static void fx_init(struct fixture *f, const char *settings, const char *profile)
{
    memset(f, 0, sizeof *f);
    f->settings = cJSON_Parse(settings);
    f->profile = cJSON_Parse(profile);
    assert_non_null(f->settings);
    assert_non_null(f->profile);
    f->content.channel = CH_EMAIL;
    f->content.subject = "Hi";
    f->content.text = "Hello there";
    f->content.html = "<p>Hello</p>";
    f->d = (struct delivery){.message_id = "1-msg42", .idempotency_key = "idem-1",
                             .provider_id = "pr_1", .content = &f->content,
                             .profile = f->profile, .settings = f->settings,
                             .timeout_ms = 5000, .now_ms = NOW_MS};
    transport_req_init(&f->req);
}

static void fx_cleanup(struct fixture *f)
{
    transport_req_cleanup(&f->req);
    cJSON_Delete(f->settings);
    cJSON_Delete(f->profile);
}

/* build: ops->build on f; returns its rc. */
static int build(const char *name, struct fixture *f)
{
    const struct provider_ops *ops = provider_find(name);
    assert_non_null(ops);
    memset(&f->r, 0, sizeof f->r);
    return ops->build(&f->d, &f->req, &f->r);
}

/* classify: ops->classify of an answer (rc, status, body, raw header lines, retry). */
static void classify(const char *name, int rc, int status, const char *body,
                     const char *headers, int64_t retry_ms, struct delivery_result *r)
{
    const struct provider_ops *ops = provider_find(name);
    struct transport_resp resp;
    struct delivery d = {.message_id = "1-msg42"};
    transport_resp_init(&resp);
    resp.rc = rc;
    resp.http.status = status;
    resp.http.retry_after_ms = retry_ms;
    if (rc < 0)
        snprintf(resp.http.error, sizeof resp.http.error, "Operation timed out");
    if (body)
        assert_int_equal(buf_append_c(&resp.http.body, body), HR_OK);
    if (headers)
        assert_int_equal(buf_append_c(&resp.http.headers, headers), HR_OK);
    memset(r, 0, sizeof *r);
    ops->classify(&d, &resp, r);
    transport_resp_cleanup(&resp);
}

/* validate: the provider's validate() message for settings ("" when valid). */
static const char *validate(const char *name, const char *settings)
{
    static char msg[256];
    struct herr err = {0};
    cJSON *s = cJSON_Parse(settings);
    int rc = provider_find(name)->validate(s, &err);
    snprintf(msg, sizeof msg, "%s", rc == HR_OK ? "" : err.msg);
    cJSON_Delete(s);
    return msg;
}

/* ---- ses ---------------------------------------------------------------------------- */

#define SES_SETTINGS                                                                        \
    "{\"access_key_id\":\"AKIDEXAMPLE\",\"secret_access_key\":"                             \
    "\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\",\"region\":\"eu-west-1\","               \
    "\"from\":\"noreply@example.com\",\"from_name\":\"Acme \\\"Ops\\\"\","                   \
    "\"reply_to\":\"help@example.com\",\"configuration_set\":\"herald-set\"}"

#define SES_BODY                                                                            \
    "{\"FromEmailAddress\":\"\\\"Acme \\\\\\\"Ops\\\\\\\"\\\" <noreply@example.com>\","     \
    "\"Destination\":{\"ToAddresses\":[\"ann@example.org\"]},"                              \
    "\"ReplyToAddresses\":[\"help@example.com\"],"                                          \
    "\"Content\":{\"Simple\":{\"Subject\":{\"Data\":\"Hi\",\"Charset\":\"UTF-8\"},"         \
    "\"Body\":{\"Text\":{\"Data\":\"Hello there\",\"Charset\":\"UTF-8\"},"                 \
    "\"Html\":{\"Data\":\"<p>Hello</p>\",\"Charset\":\"UTF-8\"}}}},"                       \
    "\"ConfigurationSetName\":\"herald-set\","                                              \
    "\"EmailTags\":[{\"Name\":\"herald_message_id\",\"Value\":\"1-msg42\"}]}"

#define SES_SIGNATURE "da2cd5eba8d8ec88bda950f4cfc6ec733d61b8d307e86e6ca46b82a73715f967"

/* the exact SendEmail request, signed; the signature was computed for this date, body
 * and key with Python's hmac/hashlib (an implementation independent of herald's). */
static void test_ses_build(void **state)
{
    struct fixture f;
    (void)state;
    fx_init(&f, SES_SETTINGS, "{\"email\":\"ann@example.org\"}");
    assert_int_equal(build("ses", &f), HR_OK);
    assert_string_equal(f.req.url,
                        "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails");
    assert_null(f.req.method); /* POST */
    assert_null(f.req.guard);  /* the built-in endpoint is not user-chosen */
    assert_string_equal(hdr(&f.req, "Content-Type"), "application/json");
    assert_string_equal(hdr(&f.req, "Host"), "email.eu-west-1.amazonaws.com");
    assert_string_equal(hdr(&f.req, "X-Amz-Date"), "20251205T023000Z");
    assert_null(hdr(&f.req, "X-Amz-Security-Token"));
    assert_string_equal(f.req.body, SES_BODY);
    assert_int_equal(f.req.body_len, strlen(SES_BODY));
    assert_string_equal(hdr(&f.req, "Authorization"),
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251205/eu-west-1/ses/"
                        "aws4_request, SignedHeaders=content-type;host;x-amz-date, "
                        "Signature=" SES_SIGNATURE);
    assert_non_null(f.req.secrets);
    assert_string_equal(f.req.secrets[0], "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    fx_cleanup(&f);
}

/* a base_url (a test double, a VPC endpoint) keeps its port and path prefix, is signed as
 * the Host it is, and passes the egress guard; a session token is sent and signed */
static void test_ses_base_url_token(void **state)
{
    struct fixture f;
    (void)state;
    fx_init(&f,
            "{\"access_key_id\":\"AKID\",\"secret_access_key\":\"sk-123456\","
            "\"session_token\":\"tok-abcdef\",\"region\":\"us-east-1\","
            "\"from\":\"a@example.com\",\"base_url\":\"http://127.0.0.1:8123/aws/\"}",
            "{\"email\":\"b@example.org\"}");
    f.content.html = NULL;
    assert_int_equal(build("ses", &f), HR_OK);
    assert_string_equal(f.req.url, "http://127.0.0.1:8123/aws/v2/email/outbound-emails");
    assert_string_equal(f.req.guard, "ses");
    assert_string_equal(hdr(&f.req, "Host"), "127.0.0.1:8123");
    assert_string_equal(hdr(&f.req, "X-Amz-Security-Token"), "tok-abcdef");
    assert_non_null(strstr(hdr(&f.req, "Authorization"),
                           "Credential=AKID/20251205/us-east-1/ses/aws4_request, "
                           "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
                           "Signature="));
    assert_null(strstr(f.req.body, "\"Html\""));
    assert_null(strstr(f.req.body, "ReplyToAddresses"));
    assert_null(strstr(f.req.body, "ConfigurationSetName"));
    assert_string_equal(f.req.secrets[1], "tok-abcdef");
    fx_cleanup(&f);
}

/* a non-ASCII display name goes as one RFC 2047 encoded word, as SES asks */
static void test_ses_from_name_utf8(void **state)
{
    struct fixture f;
    (void)state;
    fx_init(&f,
            "{\"access_key_id\":\"AKID\",\"secret_access_key\":\"sk-123456\","
            "\"region\":\"us-east-1\",\"from\":\"a@example.com\",\"from_name\":\"Zoë\"}",
            "{\"email\":\"b@example.org\"}");
    assert_int_equal(build("ses", &f), HR_OK);
    assert_non_null(strstr(f.req.body,
                           "\"FromEmailAddress\":\"=?UTF-8?B?Wm/Dqw==?= <a@example.com>\""));
    fx_cleanup(&f);
}

/* nothing to send, or nobody to send it to: PERMANENT before any call */
static void test_ses_build_refusals(void **state)
{
    struct fixture f;
    (void)state;
    fx_init(&f, SES_SETTINGS, "{\"email\":\"not an address\"}");
    assert_true(build("ses", &f) < 0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "invalid email address");
    fx_cleanup(&f);
    fx_init(&f, SES_SETTINGS, "{\"email\":\"ann@example.org\"}");
    f.content.text = f.content.html = NULL;
    assert_true(build("ses", &f) < 0);
    assert_string_equal(f.r.reason, "no content to send");
    fx_cleanup(&f);
}

static void test_ses_classify(void **state)
{
    struct delivery_result r;
    (void)state;
    classify("ses", HR_OK, 200, "{\"MessageId\":\"0102018f-abc\"}", NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_SENT);
    assert_string_equal(r.reference, "0102018f-abc");
    assert_int_equal(r.remote_status, 200);

    classify("ses", HR_OK, 429, "{\"message\":\"Maximum sending rate exceeded.\"}",
             "HTTP/1.1 429 Too Many Requests\r\nX-Amzn-ErrorType: "
             "TooManyRequestsException:http://internal.amazon.com/coral/com.amazon.ses/\r\n"
             "Retry-After: 7\r\n",
             7000, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(r.retry_after_ms, 7000);
    assert_string_equal(r.reason, "ses 429: TooManyRequestsException: Maximum sending rate "
                                  "exceeded.");

    /* throttling named in the body of a 400 is still throttling */
    classify("ses", HR_OK, 400,
             "{\"__type\":\"com.amazon.ses#TooManyRequestsException\",\"message\":\"slow\"}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);

    classify("ses", HR_OK, 400, "{\"message\":\"Email address is not verified.\"}",
             "HTTP/1.1 400 Bad Request\r\nx-amzn-errortype: MessageRejected:http://x/\r\n", 0,
             &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(r.reason, "ses 400: MessageRejected: Email address is not verified.");

    classify("ses", HR_OK, 400, "{\"message\":\"MAIL FROM domain not verified\"}",
             "X-Amzn-ErrorType: MailFromDomainNotVerifiedException\r\n", 0, &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);
    assert_non_null(strstr(r.reason, "MailFromDomainNotVerifiedException"));

    classify("ses", HR_OK, 403, "{\"message\":\"The request signature we calculated does not "
                                "match the signature you provided.\"}",
             "X-Amzn-ErrorType: SignatureDoesNotMatchException\r\n", 0, &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);

    classify("ses", HR_OK, 503, "{\"message\":\"Service Unavailable\"}", NULL, 2000, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(r.retry_after_ms, 2000);

    classify("ses", HR_TIMEOUT, 0, NULL, NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(r.remote_status, 0);
}

static void test_ses_validate(void **state)
{
    (void)state;
    assert_string_equal(validate("ses", SES_SETTINGS), "");
    assert_non_null(strstr(validate("ses", "{\"secret_access_key\":\"x\",\"region\":\"us-east-1\","
                                           "\"from\":\"a@b.co\"}"),
                           "settings.access_key_id"));
    assert_non_null(strstr(validate("ses", "{\"access_key_id\":\"AK/ID\",\"secret_access_key\":"
                                           "\"x\",\"region\":\"us-east-1\",\"from\":\"a@b.co\"}"),
                           "settings.access_key_id"));
    assert_non_null(strstr(validate("ses", "{\"access_key_id\":\"AKID\",\"secret_access_key\":"
                                           "\"x\",\"from\":\"a@b.co\"}"),
                           "settings.region"));
    assert_non_null(strstr(validate("ses", "{\"access_key_id\":\"AKID\",\"secret_access_key\":"
                                           "\"x\",\"region\":\"us east\",\"from\":\"a@b.co\"}"),
                           "settings.region"));
    assert_non_null(strstr(validate("ses", "{\"access_key_id\":\"AKID\",\"secret_access_key\":"
                                           "\"x\",\"region\":\"us-east-1\"}"),
                           "settings.from"));
    assert_non_null(strstr(validate("ses", "{\"access_key_id\":\"AKID\",\"secret_access_key\":"
                                           "\"x\",\"region\":\"us-east-1\",\"from\":\"a@b.co\","
                                           "\"base_url\":\"ftp://x\"}"),
                           "settings.base_url"));
    assert_non_null(strstr(validate("ses", "{\"access_key_id\":\"AKID\",\"secret_access_key\":"
                                           "\"x\",\"region\":\"us-east-1\",\"from\":\"a@b.co\","
                                           "\"configuration_set\":\"a b\"}"),
                           "settings.configuration_set"));
    {
        cJSON *p = cJSON_Parse("{\"phone_number\":\"+15550001111\"}");
        assert_false(provider_find("ses")->addressable(p, NULL));
        cJSON_Delete(p);
    }
}

/* ---- vonage ------------------------------------------------------------------------- */

#define VONAGE_SETTINGS                                                                     \
    "{\"api_key\":\"abcd1234\",\"api_secret\":\"s3cr3t-vonage\",\"from\":\"AcmeInc\"}"

static void test_vonage_build(void **state)
{
    struct fixture f;
    (void)state;
    fx_init(&f, VONAGE_SETTINGS, "{\"phone_number\":\"+447700900000\"}");
    f.content.channel = CH_SMS;
    assert_int_equal(build("vonage", &f), HR_OK);
    assert_string_equal(f.req.url, "https://rest.nexmo.com/sms/json");
    assert_null(f.req.guard);
    assert_string_equal(hdr(&f.req, "Content-Type"), "application/x-www-form-urlencoded");
    assert_null(hdr(&f.req, "Authorization")); /* credentials travel in the form */
    assert_string_equal(f.req.body, "api_key=abcd1234&api_secret=s3cr3t-vonage&from=AcmeInc"
                                    "&to=447700900000&text=Hello+there&client-ref=1-msg42");
    assert_string_equal(f.req.secrets[0], "s3cr3t-vonage");
    fx_cleanup(&f);

    /* non-ASCII text is sent as type=unicode; a base_url is guarded */
    fx_init(&f,
            "{\"api_key\":\"abcd1234\",\"api_secret\":\"s3cr3t-vonage\",\"from\":\"+15550001111\","
            "\"base_url\":\"http://127.0.0.1:9/v/\"}",
            "{\"phone_number\":\"15550002222\"}");
    f.content.text = "Grüße";
    assert_int_equal(build("vonage", &f), HR_OK);
    assert_string_equal(f.req.url, "http://127.0.0.1:9/v/sms/json");
    assert_string_equal(f.req.guard, "vonage");
    assert_string_equal(f.req.body, "api_key=abcd1234&api_secret=s3cr3t-vonage&from=15550001111"
                                    "&to=15550002222&text=Gr%C3%BC%C3%9Fe&type=unicode"
                                    "&client-ref=1-msg42");
    fx_cleanup(&f);

    fx_init(&f, VONAGE_SETTINGS, "{\"email\":\"a@b.co\"}");
    assert_true(build("vonage", &f) < 0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "no usable phone_number in the profile");
    fx_cleanup(&f);
}

static void test_vonage_classify(void **state)
{
    struct delivery_result r;
    (void)state;
    classify("vonage", HR_OK, 200,
             "{\"message-count\":\"1\",\"messages\":[{\"to\":\"447700900000\",\"message-id\":"
             "\"0A0000000123ABCD1\",\"status\":\"0\",\"remaining-balance\":\"3.14\"}]}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_SENT);
    assert_string_equal(r.reference, "0A0000000123ABCD1");

    /* errors come inside a 200: status 1 (throttled) retries, 4 (credentials) does not */
    classify("vonage", HR_OK, 200,
             "{\"message-count\":\"1\",\"messages\":[{\"status\":\"1\",\"error-text\":"
             "\"Throughput Rate Exceeded - please wait [ 30 ] and retry\"}]}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    assert_string_equal(r.reason, "vonage status 1: Throughput Rate Exceeded - please wait "
                                  "[ 30 ] and retry");
    classify("vonage", HR_OK, 200,
             "{\"message-count\":\"1\",\"messages\":[{\"status\":\"4\",\"error-text\":"
             "\"Bad Credentials\"}]}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(r.reason, "vonage status 4: Bad Credentials");
    classify("vonage", HR_OK, 200, "{\"messages\":[{\"status\":\"5\",\"error-text\":\"x\"}]}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    /* a long text: the part that failed decides */
    classify("vonage", HR_OK, 200,
             "{\"message-count\":\"2\",\"messages\":[{\"status\":\"0\",\"message-id\":\"A\"},"
             "{\"status\":\"7\",\"error-text\":\"Number barred.\"}]}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(r.reason, "vonage status 7: Number barred.");
    classify("vonage", HR_OK, 200, "not json", NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);

    classify("vonage", HR_OK, 429, "", "Retry-After: 3\r\n", 3000, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(r.retry_after_ms, 3000);
    classify("vonage", HR_OK, 502, "bad gateway", NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    classify("vonage", HR_OK, 401,
             "{\"type\":\"https://developer.nexmo.com/api-errors#unauthorized\","
             "\"title\":\"Invalid credentials supplied\"}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(r.reason, "vonage 401: Invalid credentials supplied");
}

static void test_vonage_validate(void **state)
{
    (void)state;
    assert_string_equal(validate("vonage", VONAGE_SETTINGS), "");
    assert_non_null(strstr(validate("vonage", "{\"api_secret\":\"x\",\"from\":\"A\"}"),
                           "settings.api_key"));
    assert_non_null(strstr(validate("vonage", "{\"api_key\":\"k\",\"from\":\"A\"}"),
                           "settings.api_secret"));
    assert_non_null(strstr(validate("vonage", "{\"api_key\":\"k\",\"api_secret\":\"x\"}"),
                           "settings.from"));
    assert_non_null(strstr(validate("vonage", "{\"api_key\":\"k\",\"api_secret\":\"x\","
                                              "\"from\":\"A\",\"base_url\":\"nope\"}"),
                           "settings.base_url"));
}

/* ---- messagebird -------------------------------------------------------------------- */

#define MB_SETTINGS "{\"access_key\":\"live_mbKey0123456789\",\"originator\":\"Acme\"}"

static void test_messagebird_build(void **state)
{
    struct fixture f;
    (void)state;
    fx_init(&f, MB_SETTINGS, "{\"phone_number\":\"+31612345678\"}");
    assert_int_equal(build("messagebird", &f), HR_OK);
    assert_string_equal(f.req.url, "https://rest.messagebird.com/messages");
    assert_null(f.req.guard);
    assert_string_equal(hdr(&f.req, "Content-Type"), "application/json");
    assert_string_equal(hdr(&f.req, "Accept"), "application/json");
    assert_string_equal(hdr(&f.req, "Authorization"), "AccessKey live_mbKey0123456789");
    assert_string_equal(f.req.body, "{\"originator\":\"Acme\",\"recipients\":[\"31612345678\"],"
                                    "\"body\":\"Hello there\",\"reference\":\"1-msg42\"}");
    assert_string_equal(f.req.secrets[0], "live_mbKey0123456789");
    fx_cleanup(&f);

    fx_init(&f,
            "{\"access_key\":\"k-123456\",\"originator\":\"+15550001111\","
            "\"base_url\":\"http://127.0.0.1:9\"}",
            "{\"phone_number\":\"+15550002222\"}");
    assert_int_equal(build("messagebird", &f), HR_OK);
    assert_string_equal(f.req.url, "http://127.0.0.1:9/messages");
    assert_string_equal(f.req.guard, "messagebird");
    assert_non_null(strstr(f.req.body, "\"originator\":\"15550001111\""));
    fx_cleanup(&f);

    fx_init(&f, MB_SETTINGS, "{\"phone_number\":\"+31612345678\"}");
    f.content.text = "";
    assert_true(build("messagebird", &f) < 0);
    assert_string_equal(f.r.reason, "no text to send");
    fx_cleanup(&f);
}

static void test_messagebird_classify(void **state)
{
    struct delivery_result r;
    (void)state;
    classify("messagebird", HR_OK, 201,
             "{\"id\":\"e8077d803532c0b5937c639b60216938\",\"href\":\"https://rest.messagebird"
             ".com/messages/e8077d803532c0b5937c639b60216938\",\"direction\":\"mt\"}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_SENT);
    assert_string_equal(r.reference, "e8077d803532c0b5937c639b60216938");

    classify("messagebird", HR_OK, 422,
             "{\"errors\":[{\"code\":9,\"description\":\"no (correct) recipients found\","
             "\"parameter\":\"recipients\"}]}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(r.reason, "messagebird 422: no (correct) recipients found (code 9, "
                                  "parameter recipients)");
    classify("messagebird", HR_OK, 401,
             "{\"errors\":[{\"code\":2,\"description\":\"Request not allowed (incorrect "
             "access_key)\",\"parameter\":null}]}",
             NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(r.reason, "messagebird 401: Request not allowed (incorrect access_key) "
                                  "(code 2)");
    classify("messagebird", HR_OK, 429, "{\"errors\":[{\"code\":7,\"description\":\"slow\"}]}",
             "Retry-After: 9\r\n", 9000, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(r.retry_after_ms, 9000);
    classify("messagebird", HR_OK, 500, "oops", NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
    classify("messagebird", HR_IO, 0, NULL, NULL, 0, &r);
    assert_int_equal(r.outcome, DELIVERY_TRANSIENT);
}

static void test_messagebird_validate(void **state)
{
    cJSON *p = cJSON_Parse("{\"phone_number\":\"+31612345678\"}");
    (void)state;
    assert_string_equal(validate("messagebird", MB_SETTINGS), "");
    assert_string_equal(validate("messagebird",
                                 "{\"access_key\":\"k\",\"originator\":\"+31612345678\"}"),
                        "");
    assert_non_null(strstr(validate("messagebird", "{\"originator\":\"Acme\"}"),
                           "settings.access_key"));
    assert_non_null(strstr(validate("messagebird", "{\"access_key\":\"k\"}"),
                           "settings.originator"));
    assert_non_null(strstr(validate("messagebird",
                                    "{\"access_key\":\"k\",\"originator\":\"AcmeCorporation\"}"),
                           "settings.originator"));
    assert_non_null(strstr(validate("messagebird",
                                    "{\"access_key\":\"k\",\"originator\":\"Ac me\"}"),
                           "settings.originator"));
    assert_true(provider_find("messagebird")->addressable(p, NULL));
    assert_true(provider_find("vonage")->addressable(p, NULL));
    cJSON_Delete(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ses_build),
        cmocka_unit_test(test_ses_base_url_token),
        cmocka_unit_test(test_ses_from_name_utf8),
        cmocka_unit_test(test_ses_build_refusals),
        cmocka_unit_test(test_ses_classify),
        cmocka_unit_test(test_ses_validate),
        cmocka_unit_test(test_vonage_build),
        cmocka_unit_test(test_vonage_classify),
        cmocka_unit_test(test_vonage_validate),
        cmocka_unit_test(test_messagebird_build),
        cmocka_unit_test(test_messagebird_classify),
        cmocka_unit_test(test_messagebird_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
