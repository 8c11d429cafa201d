/* test_receipt_sig.c: the providers' receipt signatures (src/api/receipt_sig.c) against
 * their published examples: SendGrid's Event Webhook test key and signature (the
 * sendgrid-nodejs eventwebhook test), Twilio's request-validation example (auth token
 * 12345), Svix's verification example; Mailgun with a vector computed independently
 * (Node's crypto); SNS with a certificate made here (RSA, SignatureVersion 1 and 2), its
 * exact string to sign, and the certificate URL allow-list; Postmark Basic; the form
 * parser and the timestamp window. Each also refuses a one-byte change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/api/receipt_sig.h"
#include "../../../src/util/arena.h"
#include "../../../src/util/crypto.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_sendgrid(void **state)
{
    const char *pk = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhd"
                     "bcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
    const char *sig = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQs"
                      "bVRamr2nlxFDWYNH2j/0=";
    const char *body = "{\"category\":\"example_payload\",\"event\":\"test_event\","
                       "\"message_id\":\"message_id\"}";
    char pem[512];
    (void)state;
    assert_int_equal(receipt_sig_sendgrid(pk, sig, "1588788367", str_c(body)), HR_OK);
    snprintf(pem, sizeof pem, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", pk);
    assert_int_equal(receipt_sig_sendgrid(pem, sig, "1588788367", str_c(body)), HR_OK);
    assert_int_equal(receipt_sig_sendgrid(pk, sig, "1588788368", str_c(body)), HR_PERM);
    assert_int_equal(receipt_sig_sendgrid(pk, sig, "1588788367",
                                          str_c("{\"category\":\"example_payload\",\"event\":"
                                                "\"test_event\",\"message_id\":\"message_iD\"}")),
                     HR_PERM);
    assert_int_equal(receipt_sig_sendgrid(pk, NULL, "1588788367", str_c(body)), HR_PERM);
    assert_int_equal(receipt_sig_sendgrid(pk, "!!notbase64", "1588788367", str_c(body)), HR_PERM);
    assert_int_equal(receipt_sig_sendgrid("", sig, "1588788367", str_c(body)), HR_INVAL);
    assert_int_equal(receipt_sig_sendgrid("bm90IGEga2V5", sig, "1588788367", str_c(body)), HR_INVAL);
}

static void test_twilio(void **state)
{
    const char *names[] = {"To", "From", "Digits", "Caller", "CallSid"};
    const char *values[] = {"+18005551212", "+12349013030", "1234", "+12349013030",
                            "CA1234567890ABCDE"};
    const char *url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    (void)state;
    assert_int_equal(receipt_sig_twilio("12345", url, names, values, 5, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
                     HR_OK);
    assert_int_equal(receipt_sig_twilio("12346", url, names, values, 5, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
                     HR_PERM);
    assert_int_equal(receipt_sig_twilio("12345", "https://mycompany.com/myapp.php?foo=1&bar=3",
                                        names, values, 5, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
                     HR_PERM);
    assert_int_equal(receipt_sig_twilio("12345", url, names, values, 4, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
                     HR_PERM); /* a parameter dropped */
    assert_int_equal(receipt_sig_twilio("12345", url, names, values, 5, NULL), HR_PERM);
    assert_int_equal(receipt_sig_twilio("", url, names, values, 5, "x"), HR_INVAL);
}

static void test_svix(void **state)
{
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const char *id = "msg_p5jXN8AQM9LWM0D4loKWxJek", *ts = "1614265330";
    struct str body = str_c("{\"test\": 2432232314}");
    (void)state;
    assert_int_equal(receipt_sig_svix(secret, id, ts, body, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                     HR_OK);
    /* several signatures (key rotation): one match is enough */
    assert_int_equal(receipt_sig_svix(secret, id, ts, body,
                                      "v1,AAAA v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                     HR_OK);
    assert_int_equal(receipt_sig_svix(secret, id, "1614265331", body,
                                      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                     HR_PERM);
    assert_int_equal(receipt_sig_svix(secret, "msg_other", ts, body,
                                      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                     HR_PERM);
    assert_int_equal(receipt_sig_svix(secret, id, ts, body,
                                      "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                     HR_PERM);
    assert_int_equal(receipt_sig_svix(secret, id, ts, body, ""), HR_PERM);
    assert_int_equal(receipt_sig_svix("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id, ts, body, "v1,x"),
                     HR_INVAL);
}

static void test_mailgun(void **state)
{
    const char *tok = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123";
    const char *sig = "80c4287fbb2b47fe7d5cad1201165200c1bcea164acc5567d55bba5a1e148fe0";
    (void)state;
    assert_int_equal(receipt_sig_mailgun("key-7a5a6b1c", "1770920772", tok, sig), HR_OK);
    assert_int_equal(receipt_sig_mailgun("key-7a5a6b1d", "1770920772", tok, sig), HR_PERM);
    assert_int_equal(receipt_sig_mailgun("key-7a5a6b1c", "1770920773", tok, sig), HR_PERM);
    assert_int_equal(receipt_sig_mailgun("key-7a5a6b1c", "1770920772", tok, "80c4"), HR_PERM);
    assert_int_equal(receipt_sig_mailgun("", "1770920772", tok, sig), HR_INVAL);
}

static void test_basic(void **state)
{
    (void)state;
    /* "hook:s3cret" */
    assert_int_equal(receipt_sig_basic("Basic aG9vazpzM2NyZXQ=", "hook", "s3cret"), HR_OK);
    assert_int_equal(receipt_sig_basic("basic aG9vazpzM2NyZXQ=", "hook", "s3cret"), HR_OK);
    assert_int_equal(receipt_sig_basic("Basic aG9vazpzM2NyZXQ=", "hook", "s3creT"), HR_PERM);
    assert_int_equal(receipt_sig_basic("Bearer aG9vazpzM2NyZXQ=", "hook", "s3cret"), HR_PERM);
    assert_int_equal(receipt_sig_basic(NULL, "hook", "s3cret"), HR_PERM);
    assert_int_equal(receipt_sig_basic("Basic aG9vazpzM2NyZXQ=", NULL, "s3cret"), HR_INVAL);
}

/* ---- SNS ---------------------------------------------------------------------------------- */

struct sns_key {
    EVP_PKEY *key;
    char *pem;
    size_t len;
};

static void sns_key_make(struct sns_key *k)
{
    X509 *x = X509_new();
    BIO *b = BIO_new(BIO_s_mem());
    X509_NAME *n;
    BUF_MEM *bm;
    k->key = EVP_RSA_gen(2048);
    assert_non_null(k->key);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k->key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"sns.amazonaws.com",
                               -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k->key, EVP_sha256()) > 0);
    PEM_write_bio_X509(b, x);
    BIO_get_mem_ptr(b, &bm);
    k->pem = malloc(bm->length + 1);
    memcpy(k->pem, bm->data, bm->length);
    k->len = bm->length;
    k->pem[k->len] = '\0';
    BIO_free(b);
    X509_free(x);
}

static void sns_sign(struct sns_key *k, cJSON *msg, const char *ver)
{
    char *sts = NULL, b64[1024];
    unsigned char sig[512];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cJSON_DeleteItemFromObject(msg, "SignatureVersion");
    cJSON_AddStringToObject(msg, "SignatureVersion", ver);
    assert_int_equal(receipt_sns_string_to_sign(msg, &sts), HR_OK);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, strcmp(ver, "1") ? EVP_sha256() : EVP_sha1(),
                                        NULL, k->key),
                     1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, (unsigned char *)sts, strlen(sts)), 1);
    crypto_b64_encode(sig, sig_len, b64, sizeof b64);
    cJSON_DeleteItemFromObject(msg, "Signature");
    cJSON_AddStringToObject(msg, "Signature", b64);
    EVP_MD_CTX_free(ctx);
    free(sts);
}

static void test_sns(void **state)
{
    struct sns_key k;
    cJSON *msg = cJSON_Parse(
        "{\"Type\":\"Notification\",\"MessageId\":\"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\","
        "\"TopicArn\":\"arn:aws:sns:us-west-2:123456789012:MyTopic\",\"Subject\":\"My First "
        "Message\",\"Message\":\"Hello world!\",\"Timestamp\":\"2012-05-02T00:54:06.655Z\"}");
    char *sts = NULL;
    (void)state;
    assert_int_equal(receipt_sns_string_to_sign(msg, &sts), HR_OK);
    assert_string_equal(sts, "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
                             "Subject\nMy First Message\nTimestamp\n2012-05-02T00:54:06.655Z\n"
                             "TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\n"
                             "Notification\n");
    free(sts);
    sns_key_make(&k);
    sns_sign(&k, msg, "2");
    assert_int_equal(receipt_sig_sns(msg, k.pem, k.len), HR_OK);
    sns_sign(&k, msg, "1");
    assert_int_equal(receipt_sig_sns(msg, k.pem, k.len), HR_OK);
    /* signed as v1, claimed v2 */
    cJSON_DeleteItemFromObject(msg, "SignatureVersion");
    cJSON_AddStringToObject(msg, "SignatureVersion", "2");
    assert_int_equal(receipt_sig_sns(msg, k.pem, k.len), HR_PERM);
    sns_sign(&k, msg, "2");
    cJSON_DeleteItemFromObject(msg, "Message");
    cJSON_AddStringToObject(msg, "Message", "Hello world?");
    assert_int_equal(receipt_sig_sns(msg, k.pem, k.len), HR_PERM);
    assert_int_equal(receipt_sig_sns(msg, "not a certificate", 17), HR_PERM);
    cJSON_Delete(msg);

    /* a subscription confirmation signs SubscribeURL and Token, not Subject */
    msg = cJSON_Parse("{\"Type\":\"SubscriptionConfirmation\",\"MessageId\":\"m\",\"Token\":\"t\","
                      "\"TopicArn\":\"a\",\"Message\":\"x\",\"SubscribeURL\":\"u\","
                      "\"Timestamp\":\"ts\"}");
    assert_int_equal(receipt_sns_string_to_sign(msg, &sts), HR_OK);
    assert_string_equal(sts, "Message\nx\nMessageId\nm\nSubscribeURL\nu\nTimestamp\nts\nToken\nt\n"
                             "TopicArn\na\nType\nSubscriptionConfirmation\n");
    free(sts);
    sns_sign(&k, msg, "2");
    assert_int_equal(receipt_sig_sns(msg, k.pem, k.len), HR_OK);
    cJSON_DeleteItemFromObject(msg, "Token");
    assert_int_equal(receipt_sig_sns(msg, k.pem, k.len), HR_PERM);
    cJSON_Delete(msg);
    EVP_PKEY_free(k.key);
    free(k.pem);
}

static void test_sns_urls(void **state)
{
    (void)state;
    assert_true(receipt_sns_url_ok("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-"
                                   "9c6465fa7f48f5cacd23014631ec1136.pem",
                                   NULL, true));
    assert_true(receipt_sns_url_ok("https://sns.eu-west-3.amazonaws.com/?Action=ConfirmSubscription"
                                   "&TopicArn=a&Token=b",
                                   "", false));
    assert_false(receipt_sns_url_ok("https://sns.eu-west-3.amazonaws.com/?Action=x", NULL, true));
    assert_false(receipt_sns_url_ok("http://sns.us-east-1.amazonaws.com/c.pem", NULL, true));
    assert_false(receipt_sns_url_ok("https://sns.us-east-1.amazonaws.com.evil.example/c.pem", NULL,
                                    true));
    assert_false(receipt_sns_url_ok("https://evil.example/sns.us-east-1.amazonaws.com/c.pem", NULL,
                                    true));
    assert_false(receipt_sns_url_ok("https://sns.us-east-1.amazonaws.com@evil.example/c.pem", NULL,
                                    true));
    assert_false(receipt_sns_url_ok("https://SNS.us-east-1.amazonaws.com/c.pem", NULL, true));
    /* the override replaces the rule */
    assert_true(receipt_sns_url_ok("http://127.0.0.1:9/sns/cert.pem", "http://127.0.0.1:9/sns/", true));
    assert_false(receipt_sns_url_ok("https://sns.us-east-1.amazonaws.com/c.pem",
                                    "http://127.0.0.1:9/sns/", true));
}

static void test_form_and_time(void **state)
{
    struct arena *a = arena_new(1024);
    const char *names[4], *values[4];
    (void)state;
    assert_int_equal(receipt_form_parse(str_c("To=%2B1555&Body=a+b%26c&Empty=&Bare"), a, names,
                                        values, 4),
                     4);
    assert_string_equal(names[0], "To");
    assert_string_equal(values[0], "+1555");
    assert_string_equal(values[1], "a b&c");
    assert_string_equal(values[2], "");
    assert_string_equal(names[3], "Bare");
    assert_int_equal(receipt_form_parse(str_c("a=1&b=2&c=3&d=4&e=5"), a, names, values, 4), HR_INVAL);
    assert_int_equal(receipt_form_parse(str_c("a=%2"), a, names, values, 4), HR_INVAL);
    assert_int_equal(receipt_form_parse(str_c("a=%00"), a, names, values, 4), HR_INVAL);
    assert_true(receipt_ts_fresh("1700000000", 1700000000000LL + 299000, 300));
    assert_false(receipt_ts_fresh("1700000000", 1700000000000LL + 301000, 300));
    assert_false(receipt_ts_fresh("1700000400", 1700000000000LL, 300));
    assert_false(receipt_ts_fresh("17e8", 1700000000000LL, 300));
    assert_false(receipt_ts_fresh(NULL, 1700000000000LL, 300));
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sendgrid), cmocka_unit_test(test_twilio),
        cmocka_unit_test(test_svix),     cmocka_unit_test(test_mailgun),
        cmocka_unit_test(test_basic),    cmocka_unit_test(test_sns),
        cmocka_unit_test(test_sns_urls), cmocka_unit_test(test_form_and_time),
    };
    return cmocka_run_group_tests_name("api/receipt_sig", tests, NULL, NULL);
}
