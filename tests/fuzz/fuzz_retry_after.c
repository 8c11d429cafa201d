/* fuzz_retry_after.c: libFuzzer target for the provider response parsers
 * (providers/http_client.h). Input: a raw HTTP response ("HTTP/1.1 429 ...", header lines,
 * a blank line, the body). The header block is searched as http_client_perform() leaves
 * it (Retry-After, X-Message-Id), Retry-After values are turned into delays (also the
 * whole input as one value), the body is read as JSON the way SendGrid, Twilio and the
 * webhook provider read error answers, and the response is classified. */
#include "fuzz_common.h"
#include "../../src/providers/http_client.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1764360000000LL
#define DAY_MS 86400000LL

static void text(const char *s, size_t max)
{
    char out[64];
    if (!s)
        return;
    http_client_text(out, sizeof out, str_c(s), max);
    CHECK(strlen(out) < sizeof out);
    CHECK(utf8_valid(out, strlen(out)));
}

/* cJSON allocates through xalloc here as in herald (src/main.c), so the fuzzer runs the
 * same cJSON code paths (printing without realloc) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_use_xalloc();
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *p = (const char *)data;
    const char *end = p + size, *split = NULL;
    struct http_client_resp resp;
    struct delivery_result r;
    char value[256], *whole;
    int64_t ms;
    cJSON *v;

    http_client_resp_init(&resp);
    for (const char *q = p; q + 1 < end; q++) {
        if (q[0] == '\n' && q[1] == '\n') {
            split = q + 2;
            break;
        }
        if (q + 3 < end && memcmp(q, "\r\n\r\n", 4) == 0) {
            split = q + 4;
            break;
        }
    }
    if (buf_append(&resp.headers, p, (size_t)((split ? split : end) - p)) < 0)
        goto out;
    if (split && buf_append(&resp.body, split, (size_t)(end - split)) < 0)
        resp.truncated = true;
    if (size > 12 && memcmp(p, "HTTP/", 5) == 0) {
        const char *s = memchr(p, ' ', size);
        if (s && s + 4 <= end)
            resp.status = (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    }

    if (http_client_header(&resp, "Retry-After", value, sizeof value)) {
        CHECK(strlen(value) < sizeof value);
        ms = http_client_retry_after(value, NOW_MS);
        CHECK(ms >= 0 && ms <= DAY_MS);
        resp.retry_after_ms = ms;
    }
    if (http_client_header(&resp, "X-Message-Id", value, sizeof value))
        text(value, 60);

    whole = malloc(size + 1);
    memcpy(whole, data, size);
    whole[size] = '\0';
    ms = http_client_retry_after(whole, NOW_MS);
    CHECK(ms >= 0 && ms <= DAY_MS);
    ms = http_client_retry_after(whole, 0);
    CHECK(ms >= 0 && ms <= DAY_MS);
    text(whole, 200);
    snprintf(resp.error, sizeof resp.error, "%s", whole);
    free(whole);

    v = http_client_resp_json(&resp);
    if (v) {
        const cJSON *e0 = cJSON_GetArrayItem(json_arr(v, "errors"), 0);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
        int64_t code;
        text(json_str(e0, "message"), 200);
        text(json_str(e0, "field"), 60);
        text(json_str(v, "message"), 200);
        (void)json_i64(v, "code", &code);
        if (cJSON_IsString(id))
            text(id->valuestring, 255);
        cJSON_Delete(v);
    }

    memset(&r, 0, sizeof r);
    http_client_classify(HR_OK, &resp, "fuzz", &r);
    CHECK(memchr(r.reason, '\0', sizeof r.reason) != NULL);
    CHECK(r.retry_after_ms >= 0 && r.retry_after_ms <= DAY_MS);
    http_client_classify(HR_IO, &resp, "fuzz", &r);
    CHECK(memchr(r.reason, '\0', sizeof r.reason) != NULL);
out:
    http_client_resp_cleanup(&resp);
    return 0;
}
