/* test_email_apis.c: the Postmark, Resend and Mailgun providers without a network: build()
 * checked byte for byte (URL, method, every header line, Basic credentials, body, egress
 * guard, secrets to scrub) against each API's documented request, classify() fed each
 * kind of answer the APIs give (2xx with the message id, 429 with Retry-After, 5xx,
 * documented 4xx error bodies, 200-with-error, transport failures), validate() and the
 * shared helpers (mailbox quoting, recipient checks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/providers/email_api.h"
#include "../../../src/providers/http_client.h"
#include "../../../src/providers/provider.h"
#include "../../../src/providers/transport.h"
#include "../../../src/util/crypto.h"
#include "../../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_ID "1-65f240a0-47a6a120c8374de9bcf9f22c"
#define IDEM MSG_ID ":email:p1"

struct fixture {
    cJSON *settings;
    cJSON *profile;
    struct content content;
    struct delivery d;
    struct delivery_result r;
    struct transport_req req;
};

static void fx_init(struct fixture *f, const char *settings_json)
{
    memset(f, 0, sizeof *f);
    f->settings = cJSON_Parse(settings_json);
    f->profile = cJSON_Parse("{\"email\":\"ada@example.com\",\"phone_number\":\"+1555\"}");
    assert_non_null(f->settings);
    assert_non_null(f->profile);
    f->content.channel = CH_EMAIL;
    f->content.subject = strdup("Your order");
    f->content.html = strdup("<p>Ready</p>");
    f->content.text = strdup("Ready");
    f->d.message_id = MSG_ID;
    f->d.idempotency_key = IDEM;
    f->d.provider_id = "p1";
    f->d.content = &f->content;
    f->d.profile = f->profile;
    f->d.settings = f->settings;
    f->d.timeout_ms = 5000;
    f->d.now_ms = 1700000000123;
    transport_req_init(&f->req);
}

static void fx_cleanup(struct fixture *f)
{
    cJSON_Delete(f->settings);
    cJSON_Delete(f->profile);
    content_cleanup(&f->content);
    transport_req_cleanup(&f->req);
}

/* build: run provider's build into f->req (fresh) and f->r; returns its rc. */
static int build(const char *provider, struct fixture *f)
{
    const struct provider_ops *p = provider_find(provider);
    assert_non_null(p);
    assert_non_null(p->build);
    transport_req_cleanup(&f->req);
    transport_req_init(&f->req);
    memset(&f->r, 0, sizeof f->r);
    return p->build(&f->d, &f->req, &f->r);
}

/* assert_headers: the request's header lines are exactly want (NULL-ended), in order. */
static void assert_headers(const struct transport_req *req, const char *const *want)
{
    const struct curl_slist *l = req->headers;
    size_t i = 0;
    for (; l && want[i]; l = l->next, i++)
        assert_string_equal(l->data, want[i]);
    assert_null(l);
    assert_null(want[i]);
}

static bool has_secret(const struct transport_req *req, const char *s)
{
    for (size_t i = 0; req->secrets && req->secrets[i]; i++)
        if (strcmp(req->secrets[i], s) == 0)
            return true;
    return false;
}

/* classify: provider's classify of an answer with this rc, status, header lines
 * ("Name: v\r\n"...), body and parsed Retry-After. */
static void classify(const char *provider, struct fixture *f, int rc, int status,
                     const char *headers, const char *body, int64_t retry_after_ms)
{
    const struct provider_ops *p = provider_find(provider);
    struct transport_resp resp;
    transport_resp_init(&resp);
    resp.rc = rc;
    resp.http.status = status;
    resp.http.retry_after_ms = retry_after_ms;
    if (rc < 0)
        snprintf(resp.http.error, sizeof resp.http.error, "%s",
                 rc == HR_TIMEOUT ? "Operation timed out after 5000 milliseconds"
                                  : "Couldn't connect to server");
    if (headers)
        assert_int_equal(buf_append_c(&resp.http.headers, headers), HR_OK);
    if (body)
        assert_int_equal(buf_append_c(&resp.http.body, body), HR_OK);
    memset(&f->r, 0, sizeof f->r);
    p->classify(&f->d, &resp, &f->r);
    transport_resp_cleanup(&resp);
}

/* ---- Postmark ----------------------------------------------------------------------- */

#define PM_SETTINGS                                                                          \
    "{\"server_token\":\"pm-server-token-0001\",\"from\":\"noreply@herald.test\","           \
    "\"from_name\":\"Herald\",\"reply_to\":\"help@herald.test\",\"message_stream\":\"outbound\"}"

static void test_postmark_build(void **state)
{
    struct fixture f;
    fx_init(&f, PM_SETTINGS);
    assert_int_equal(build("postmark", &f), HR_OK);
    assert_string_equal(f.req.url, "https://api.postmarkapp.com/email");
    assert_null(f.req.method); /* POST */
    assert_null(f.req.username);
    assert_null(f.req.guard); /* Postmark's own endpoint: operator-chosen, not guarded */
    assert_true(has_secret(&f.req, "pm-server-token-0001"));
    const char *hdrs[] = {"Content-Type: application/json", "Expect:", "Accept: application/json",
                          "X-Postmark-Server-Token: pm-server-token-0001", NULL};
    assert_headers(&f.req, hdrs);
    assert_string_equal(f.req.body,
                        "{\"From\":\"Herald <noreply@herald.test>\",\"To\":\"ada@example.com\","
                        "\"Subject\":\"Your order\",\"TextBody\":\"Ready\","
                        "\"HtmlBody\":\"<p>Ready</p>\",\"ReplyTo\":\"help@herald.test\","
                        "\"MessageStream\":\"outbound\","
                        "\"Metadata\":{\"herald_message_id\":\"" MSG_ID "\"}}");
    assert_int_equal(f.req.body_len, strlen(f.req.body));
    assert_int_equal(f.req.timeout_ms, 5000);

    /* a base_url (trailing slash dropped) is guarded; html only: no TextBody */
    cJSON_AddStringToObject(f.settings, "base_url", "http://127.0.0.1:9/pm/");
    free(f.content.text);
    f.content.text = NULL;
    cJSON_DeleteItemFromObject(f.settings, "message_stream");
    cJSON_DeleteItemFromObject(f.settings, "reply_to");
    cJSON_DeleteItemFromObject(f.settings, "from_name");
    assert_int_equal(build("postmark", &f), HR_OK);
    assert_string_equal(f.req.url, "http://127.0.0.1:9/pm/email");
    assert_string_equal(f.req.guard, "postmark");
    assert_string_equal(f.req.body, "{\"From\":\"noreply@herald.test\",\"To\":\"ada@example.com\","
                                    "\"Subject\":\"Your order\",\"HtmlBody\":\"<p>Ready</p>\","
                                    "\"Metadata\":{\"herald_message_id\":\"" MSG_ID "\"}}");
    fx_cleanup(&f);
}

static void test_postmark_classify(void **state)
{
    struct fixture f;
    fx_init(&f, PM_SETTINGS);

    classify("postmark", &f, HR_OK, 200, "Content-Type: application/json\r\n",
             "{\"To\":\"ada@example.com\",\"SubmittedAt\":\"2026-12-05T01:00:00.0000000Z\","
             "\"MessageID\":\"b7bc2f4a-e38e-4336-af7d-e6c392c2f817\",\"ErrorCode\":0,"
             "\"Message\":\"OK\"}",
             0);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_int_equal(f.r.remote_status, 200);
    assert_string_equal(f.r.reference, "b7bc2f4a-e38e-4336-af7d-e6c392c2f817");

    /* inactive recipient (hard bounce / spam complaint earlier): permanent */
    classify("postmark", &f, HR_OK, 422, NULL,
             "{\"ErrorCode\":406,\"Message\":\"You tried to send to recipient(s) that have been "
             "marked as inactive. Found inactive addresses: ada@example.com.\"}",
             0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(f.r.remote_status, 422);
    assert_string_equal(f.r.reason,
                        "postmark 422: You tried to send to recipient(s) that have been marked "
                        "as inactive. Found inactive addresses: ada@example.com. (ErrorCode 406)");
    assert_string_equal(f.r.reference, "");

    classify("postmark", &f, HR_OK, 401, NULL,
             "{\"ErrorCode\":10,\"Message\":\"Request does not contain a valid Server token.\"}",
             0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_non_null(strstr(f.r.reason, "valid Server token. (ErrorCode 10)"));

    classify("postmark", &f, HR_OK, 429, "Retry-After: 7\r\n",
             "{\"ErrorCode\":429,\"Message\":\"Rate limit exceeded.\"}", 7000);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.retry_after_ms, 7000);
    assert_non_null(strstr(f.r.reason, "Rate limit exceeded."));

    classify("postmark", &f, HR_OK, 500, NULL, "{\"ErrorCode\":0,\"Message\":\"oops\"}", 0);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);

    /* maintenance (ErrorCode 100) is retried whatever the status */
    classify("postmark", &f, HR_OK, 422, "Retry-After: 30\r\n",
             "{\"ErrorCode\":100,\"Message\":\"Maintenance\"}", 30000);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.retry_after_ms, 30000);

    /* a 200 carrying an error is no send */
    classify("postmark", &f, HR_OK, 200, NULL,
             "{\"ErrorCode\":300,\"Message\":\"Invalid email request\"}", 0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "postmark 200: Invalid email request (ErrorCode 300)");
    assert_string_equal(f.r.reference, "");

    /* no JSON in the error: the status and the body's words */
    classify("postmark", &f, HR_OK, 403, NULL, "Forbidden", 0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "postmark 403: Forbidden");

    classify("postmark", &f, HR_TIMEOUT, 0, NULL, NULL, 0);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.remote_status, 0);
    assert_non_null(strstr(f.r.reason, "postmark: Operation timed out"));
    fx_cleanup(&f);
}

/* ---- Resend ------------------------------------------------------------------------- */

#define RS_SETTINGS                                                                          \
    "{\"api_key\":\"re_123456789_abcdef\",\"from\":\"noreply@herald.test\","                 \
    "\"from_name\":\"Herald, Inc.\",\"reply_to\":\"help@herald.test\"}"

static void test_resend_build(void **state)
{
    struct fixture f;
    fx_init(&f, RS_SETTINGS);
    assert_int_equal(build("resend", &f), HR_OK);
    assert_string_equal(f.req.url, "https://api.resend.com/emails");
    assert_null(f.req.method);
    assert_null(f.req.username);
    assert_null(f.req.guard);
    assert_true(has_secret(&f.req, "re_123456789_abcdef"));
    const char *hdrs[] = {"Content-Type: application/json", "Expect:",
                          "Authorization: Bearer re_123456789_abcdef",
                          "Idempotency-Key: " IDEM, NULL};
    assert_headers(&f.req, hdrs);
    /* a display name with specials is an RFC 5322 quoted string; tag values keep to
     * [A-Za-z0-9_-] */
    assert_string_equal(f.req.body,
                        "{\"from\":\"\\\"Herald, Inc.\\\" <noreply@herald.test>\","
                        "\"to\":[\"ada@example.com\"],\"subject\":\"Your order\","
                        "\"html\":\"<p>Ready</p>\",\"text\":\"Ready\","
                        "\"reply_to\":\"help@herald.test\","
                        "\"tags\":[{\"name\":\"herald_message_id\",\"value\":\"" MSG_ID "\"}]}");

    /* an over-long key goes as its digest; a key with a CR/LF is not sent at all */
    char longkey[400];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    f.d.idempotency_key = longkey;
    f.d.message_id = "msg.1:x";
    cJSON_AddStringToObject(f.settings, "base_url", "http://127.0.0.1:9");
    assert_int_equal(build("resend", &f), HR_OK);
    assert_string_equal(f.req.url, "http://127.0.0.1:9/emails");
    assert_string_equal(f.req.guard, "resend");
    uint8_t sum[32];
    char hex[65], line[128];
    crypto_sha256(longkey, strlen(longkey), sum);
    crypto_hex(sum, sizeof sum, hex);
    snprintf(line, sizeof line, "Idempotency-Key: sha256-%s", hex);
    const char *hdrs2[] = {"Content-Type: application/json", "Expect:",
                           "Authorization: Bearer re_123456789_abcdef", line, NULL};
    assert_headers(&f.req, hdrs2);
    assert_non_null(strstr(f.req.body, "\"value\":\"msg_1_x\""));
    f.d.idempotency_key = "a\r\nX-Evil: 1";
    assert_int_equal(build("resend", &f), HR_OK);
    const char *hdrs3[] = {"Content-Type: application/json", "Expect:",
                           "Authorization: Bearer re_123456789_abcdef", NULL};
    assert_headers(&f.req, hdrs3);
    fx_cleanup(&f);
}

static void test_resend_classify(void **state)
{
    struct fixture f;
    fx_init(&f, RS_SETTINGS);

    classify("resend", &f, HR_OK, 200, NULL, "{\"id\":\"49a3999c-0ce1-4ea6-ab68-afcd6dc2e794\"}",
             0);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_string_equal(f.r.reference, "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794");

    classify("resend", &f, HR_OK, 422, NULL,
             "{\"statusCode\":422,\"message\":\"Invalid `to` field. The email address needs to "
             "follow the `email@example.com` or `Name <email@example.com>` format.\","
             "\"name\":\"validation_error\"}",
             0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(f.r.remote_status, 422);
    assert_string_equal(f.r.reason,
                        "resend 422: Invalid `to` field. The email address needs to follow the "
                        "`email@example.com` or `Name <email@example.com>` format. "
                        "(validation_error)");

    classify("resend", &f, HR_OK, 429, "Retry-After: 1\r\n",
             "{\"statusCode\":429,\"message\":\"Too many requests. You can only make 2 requests "
             "per second.\",\"name\":\"rate_limit_exceeded\"}",
             1000);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.retry_after_ms, 1000);
    assert_non_null(strstr(f.r.reason, "(rate_limit_exceeded)"));

    /* the first request with this key still runs: later; a different payload: never */
    classify("resend", &f, HR_OK, 409, "Retry-After: 2\r\n",
             "{\"statusCode\":409,\"message\":\"Same idempotency key used while original "
             "request is still in progress.\",\"name\":\"concurrent_idempotent_requests\"}",
             2000);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.retry_after_ms, 2000);
    classify("resend", &f, HR_OK, 409, NULL,
             "{\"statusCode\":409,\"message\":\"Same idempotency key used with a different "
             "request payload.\",\"name\":\"invalid_idempotent_request\"}",
             0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_non_null(strstr(f.r.reason, "(invalid_idempotent_request)"));

    classify("resend", &f, HR_OK, 503, NULL, "upstream unavailable", 0);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_string_equal(f.r.reason, "resend 503: upstream unavailable");

    classify("resend", &f, HR_IO, 0, NULL, NULL, 0);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    fx_cleanup(&f);
}

/* ---- Mailgun ------------------------------------------------------------------------ */

#define MG_SETTINGS                                                                          \
    "{\"api_key\":\"key-3ax6xnjp29jd6fds4gc373sgvjxteol0\",\"domain\":\"mg.herald.test\","   \
    "\"from\":\"noreply@herald.test\",\"from_name\":\"Herald\",\"reply_to\":\"help@herald.test\"}"

static void test_mailgun_build(void **state)
{
    struct fixture f;
    fx_init(&f, MG_SETTINGS);
    assert_int_equal(build("mailgun", &f), HR_OK);
    assert_string_equal(f.req.url, "https://api.mailgun.net/v3/mg.herald.test/messages");
    assert_null(f.req.method);
    assert_string_equal(f.req.username, "api");
    assert_string_equal(f.req.password, "key-3ax6xnjp29jd6fds4gc373sgvjxteol0");
    assert_null(f.req.guard);
    assert_true(has_secret(&f.req, "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"));
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Expect:", NULL};
    assert_headers(&f.req, hdrs);
    assert_string_equal(f.req.body,
                        "from=Herald+%3Cnoreply%40herald.test%3E&to=ada%40example.com"
                        "&subject=Your+order&text=Ready&html=%3Cp%3EReady%3C%2Fp%3E"
                        "&h%3AReply-To=help%40herald.test&v%3Aherald_message_id=" MSG_ID);

    /* region eu */
    cJSON_AddStringToObject(f.settings, "region", "eu");
    assert_int_equal(build("mailgun", &f), HR_OK);
    assert_string_equal(f.req.url, "https://api.eu.mailgun.net/v3/mg.herald.test/messages");
    assert_null(f.req.guard);
    /* a base_url wins over the region, and is guarded */
    cJSON_AddStringToObject(f.settings, "base_url", "http://127.0.0.1:9/");
    assert_int_equal(build("mailgun", &f), HR_OK);
    assert_string_equal(f.req.url, "http://127.0.0.1:9/v3/mg.herald.test/messages");
    assert_string_equal(f.req.guard, "mailgun");

    /* nothing to send, or nowhere to send it: permanent, no request */
    free(f.content.text);
    free(f.content.html);
    f.content.text = f.content.html = NULL;
    assert_int_equal(build("mailgun", &f), HR_INVAL);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "no content to send");
    f.content.text = strdup("Ready");
    cJSON_ReplaceItemInObject(f.profile, "email", cJSON_CreateString("ada@example.com\r\nBcc: x@y"));
    assert_int_equal(build("mailgun", &f), HR_INVAL);
    assert_string_equal(f.r.reason, "invalid email address");
    cJSON_ReplaceItemInObject(f.profile, "email", cJSON_CreateString("ada@example.com"));
    cJSON_ReplaceItemInObject(f.settings, "domain", cJSON_CreateString("../../v4/x"));
    assert_int_equal(build("mailgun", &f), HR_INVAL);
    assert_non_null(strstr(f.r.reason, "mailgun settings: settings.domain"));
    fx_cleanup(&f);
}

static void test_mailgun_classify(void **state)
{
    struct fixture f;
    fx_init(&f, MG_SETTINGS);

    classify("mailgun", &f, HR_OK, 200, NULL,
             "{\"id\":\"<20111114174239.25659.5817@mg.herald.test>\",\"message\":\"Queued. "
             "Thank you.\"}",
             0);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_string_equal(f.r.reference, "20111114174239.25659.5817@mg.herald.test");

    classify("mailgun", &f, HR_OK, 400, NULL, "{\"message\":\"'to' parameter is not a valid address. please check documentation\"}", 0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "mailgun 400: 'to' parameter is not a valid address. please "
                                    "check documentation");

    classify("mailgun", &f, HR_OK, 401, NULL, "Forbidden", 0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "mailgun 401: Forbidden");

    classify("mailgun", &f, HR_OK, 404, NULL, "{\"message\":\"Domain not found: mg.herald.test\"}",
             0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "mailgun 404: Domain not found: mg.herald.test");

    classify("mailgun", &f, HR_OK, 429, "Retry-After: 5\r\n", "{\"message\":\"Too many requests\"}",
             5000);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.retry_after_ms, 5000);

    classify("mailgun", &f, HR_OK, 500, NULL, NULL, 0);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);

    classify("mailgun", &f, HR_PERM, 0, NULL, NULL, 0);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    fx_cleanup(&f);
}

/* ---- validate, registry, helpers ---------------------------------------------------- */

static void test_validate(void **state)
{
    struct herr err;
    const struct {
        const char *provider, *json, *field;
    } cases[] = {
        {"postmark", "{\"server_token\":\"t\",\"from\":\"a@b.test\"}", NULL},
        {"postmark", "{\"from\":\"a@b.test\"}", "settings.server_token"},
        {"postmark", "{\"server_token\":\"t\\r\\nX: y\",\"from\":\"a@b.test\"}",
         "settings.server_token"},
        {"postmark", "{\"server_token\":\"t\"}", "settings.from"},
        {"postmark", "{\"server_token\":\"t\",\"from\":\"a@b.test\",\"message_stream\":\"\"}",
         "settings.message_stream"},
        {"postmark", "{\"server_token\":\"t\",\"from\":\"a@b.test\",\"base_url\":\"ftp://x\"}",
         "settings.base_url"},
        {"resend", "{\"api_key\":\"re_x\",\"from\":\"a@b.test\",\"reply_to\":\"r@b.test\"}", NULL},
        {"resend", "{\"from\":\"a@b.test\"}", "settings.api_key"},
        {"resend", "{\"api_key\":\"re_x\",\"from\":\"not an address\"}", "settings.from"},
        {"resend", "{\"api_key\":\"re_x\",\"from\":\"a@b.test\",\"reply_to\":\"x\"}",
         "settings.reply_to"},
        {"resend", "[]", "settings"},
        {"mailgun", "{\"api_key\":\"k\",\"domain\":\"mg.x.test\",\"from\":\"a@b.test\"}", NULL},
        {"mailgun",
         "{\"api_key\":\"k\",\"domain\":\"mg.x.test\",\"region\":\"eu\",\"from\":\"a@b.test\"}",
         NULL},
        {"mailgun", "{\"domain\":\"mg.x.test\",\"from\":\"a@b.test\"}", "settings.api_key"},
        {"mailgun", "{\"api_key\":\"k\",\"from\":\"a@b.test\"}", "settings.domain"},
        {"mailgun", "{\"api_key\":\"k\",\"domain\":\"a/b\",\"from\":\"a@b.test\"}",
         "settings.domain"},
        {"mailgun", "{\"api_key\":\"k\",\"domain\":\"mg.x.test\",\"region\":\"asia\",\"from\":"
                    "\"a@b.test\"}",
         "settings.region"},
        {"mailgun", "{\"api_key\":\"k\",\"domain\":\"mg.x.test\",\"region\":1,\"from\":"
                    "\"a@b.test\"}",
         "settings.region"},
        {"mailgun", "{\"api_key\":\"k\",\"domain\":\"mg.x.test\"}", "settings.from"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct provider_ops *p = provider_find(cases[i].provider);
        cJSON *s = cJSON_Parse(cases[i].json);
        int rc;
        herr_clear(&err);
        rc = p->validate(s, &err);
        if (!cases[i].field) {
            if (rc != HR_OK)
                fail_msg("case %zu: rc %d msg '%s'", i, rc, err.msg);
        } else if (rc != HR_INVAL || !strstr(err.msg, cases[i].field)) {
            fail_msg("case %zu: rc %d msg '%s'", i, rc, err.msg);
        }
        cJSON_Delete(s);
    }
}

static void test_registry_and_addressable(void **state)
{
    const char *names[] = {"postmark", "resend", "mailgun"};
    const char *secret[] = {"server_token", "api_key", "api_key"};
    /* the receipts' verification secret (src/api/receipts.c) is masked too */
    const char *hook_secret[] = {"webhook_password", "webhook_secret", "webhook_signing_key"};
    cJSON *email = cJSON_Parse("{\"email\":\"ada@example.com\"}");
    cJSON *phone = cJSON_Parse("{\"phone_number\":\"+15551234567\"}");
    for (int i = 0; i < 3; i++) {
        const struct provider_ops *p = provider_find(names[i]);
        assert_non_null(p);
        assert_string_equal(p->name, names[i]);
        assert_int_equal(p->channel, CH_EMAIL);
        assert_string_equal(p->secret_fields[0], secret[i]);
        assert_string_equal(p->secret_fields[1], hook_secret[i]);
        assert_null(p->secret_fields[2]);
        assert_true(p->addressable(email, NULL));
        assert_false(p->addressable(phone, NULL));
        assert_false(p->addressable(NULL, NULL));
    }
    cJSON_Delete(email);
    cJSON_Delete(phone);
}

/* One-click unsubscribe (RFC 8058): every email API carries List-Unsubscribe and
 * List-Unsubscribe-Post in its own header field when the content has one, and nothing
 * when it has none or when the value could split a header. */
#define LU "<https://h.test/u/61.62.1.00ff>, <mailto:u@h.test?subject=unsubscribe>"
static void test_list_unsubscribe(void **state)
{
    static const struct {
        const char *provider, *settings, *want;
    } cases[] = {
        {"sendgrid", "{\"api_key\":\"SG.k\",\"from\":\"a@b.test\"}",
         "\"headers\":{\"List-Unsubscribe\":\"" LU "\",\"List-Unsubscribe-Post\":"
         "\"List-Unsubscribe=One-Click\"}"},
        {"resend", RS_SETTINGS,
         "\"headers\":{\"List-Unsubscribe\":\"" LU "\",\"List-Unsubscribe-Post\":"
         "\"List-Unsubscribe=One-Click\"}"},
        {"postmark", PM_SETTINGS,
         "\"Headers\":[{\"Name\":\"List-Unsubscribe\",\"Value\":\"" LU "\"},{\"Name\":"
         "\"List-Unsubscribe-Post\",\"Value\":\"List-Unsubscribe=One-Click\"}]"},
        {"ses",
         "{\"access_key_id\":\"AKIDEXAMPLE\",\"secret_access_key\":\"s\",\"region\":"
         "\"eu-west-1\",\"from\":\"noreply@example.com\"}",
         "\"Headers\":[{\"Name\":\"List-Unsubscribe\",\"Value\":\"" LU "\"},{\"Name\":"
         "\"List-Unsubscribe-Post\",\"Value\":\"List-Unsubscribe=One-Click\"}]"},
        {"mailgun", MG_SETTINGS,
         "h%3AList-Unsubscribe=%3Chttps%3A%2F%2Fh.test%2Fu%2F61.62.1.00ff%3E%2C+%3Cmailto%3Au%40"
         "h.test%3Fsubject%3Dunsubscribe%3E&h%3AList-Unsubscribe-Post=List-Unsubscribe%3DOne-Click"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fixture f;
        fx_init(&f, cases[i].settings);
        assert_int_equal(build(cases[i].provider, &f), HR_OK);
        assert_null(strstr(f.req.body, "List-Unsubscribe")); /* none without a value */
        f.content.list_unsub = strdup(LU);
        assert_int_equal(build(cases[i].provider, &f), HR_OK);
        if (!strstr(f.req.body, cases[i].want))
            fail_msg("%s: %s", cases[i].provider, f.req.body);
        free(f.content.list_unsub);
        f.content.list_unsub = strdup("<https://h.test/u/1>\r\nBcc: evil@x.test");
        assert_int_equal(build(cases[i].provider, &f), HR_OK);
        assert_null(strstr(f.req.body, "List-Unsubscribe"));
        fx_cleanup(&f);
    }
}

static void test_mailbox(void **state)
{
    const struct {
        const char *name, *want;
    } cases[] = {
        {NULL, "a@b.test"},
        {"", "a@b.test"},
        {"Herald", "Herald <a@b.test>"},
        {"Herald Team", "Herald Team <a@b.test>"},
        {"Zoë Café", "Zoë Café <a@b.test>"},
        {"Herald, Inc.", "\"Herald, Inc.\" <a@b.test>"},
        {"say \"hi\"", "\"say \\\"hi\\\"\" <a@b.test>"},
        {"back\\slash", "\"back\\\\slash\" <a@b.test>"},
        {"evil\r\nBcc: x@y", "\"evil  Bcc: x@y\" <a@b.test>"},
        {" lead", "\" lead\" <a@b.test>"},
        {"two  spaces", "\"two  spaces\" <a@b.test>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = email_api_mailbox(cases[i].name, "a@b.test");
        if (strcmp(m, cases[i].want) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, m, cases[i].want);
        free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postmark_build),  cmocka_unit_test(test_postmark_classify),
        cmocka_unit_test(test_resend_build),    cmocka_unit_test(test_resend_classify),
        cmocka_unit_test(test_mailgun_build),   cmocka_unit_test(test_mailgun_classify),
        cmocka_unit_test(test_validate),        cmocka_unit_test(test_registry_and_addressable),
        cmocka_unit_test(test_mailbox),         cmocka_unit_test(test_list_unsubscribe),
    };
    return cmocka_run_group_tests_name("email_apis", tests, NULL, NULL);
}
