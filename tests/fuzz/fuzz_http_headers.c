/* fuzz_http_headers.c: libFuzzer target for the request headers herald reads itself
 * (libmicrohttpd frames the request; paths, queries and gzip bodies are fuzz_router's):
 * the API key out of Authorization ("Bearer K", "Basic base64(K[:pw])", src/api/auth.c),
 * Content-Type (JSON or not), X-Request-Id (kept only when sane), Content-Encoding and
 * Content-Length as begin() reads them, the Allow list, and the path as the access log
 * writes it. Input: header lines "Name: value" separated by '\n'.
 * http.c and auth.c are included to reach their file-static helpers. */
#include "fuzz_common.h"
#include "../../src/http/http.c"
#include "../../src/api/auth.c"

static bool name_is(struct str n, const char *want)
{
    return str_ieq_c(trim(n), want);
}

static void one_header(struct str name, const char *value, size_t vlen)
{
    if (name_is(name, "authorization")) {
        char buf[KEY_MAX + 8];
        struct str key = {NULL, 0};
        if (credential(value, buf, sizeof buf, &key) == HR_OK) {
            CHECK(key.len > 0 && key.len < sizeof buf);
            CHECK(key.p == buf);
            CHECK(memchr(buf, '\0', sizeof buf) != NULL);
            CHECK(strncasecmp(value + strspn(value, " "), "Bearer ", 7) != 0 ||
                  key.len == strlen(buf)); /* Bearer: the whole (trimmed) token */
        }
    } else if (name_is(name, "content-type")) {
        if (ctype_is_json(value))
            CHECK(strncasecmp(trim(str_c(value)).p, "application/", 12) == 0);
    } else if (name_is(name, "x-request-id")) {
        if (rid_ok(value)) {
            CHECK(vlen >= 1 && vlen <= 64);
            CHECK(strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789._-") == vlen);
        }
    } else if (name_is(name, "content-length")) {
        int64_t clen;
        (void)str_to_i64(str_c(value), &clen);
    } else if (name_is(name, "content-encoding")) {
        struct str ce = trim(str_c(value));
        CHECK(ce.len <= vlen);
        (void)(str_ieq_c(ce, "gzip") || str_ieq_c(ce, "x-gzip") || str_ieq_c(ce, "identity"));
    } else {
        char out[300];
        const char *lp = log_path((struct str){value, vlen}, out, sizeof out);
        CHECK(lp == out);
        CHECK(strlen(out) < sizeof out);
        for (size_t i = 0; out[i]; i++)
            CHECK((unsigned char)out[i] >= 0x20); /* nothing that breaks a log line */
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    size_t off = 0;
    if (size > 16 * 1024)
        return 0;
    if (size) { /* the Allow list for a mask from the first byte */
        char allow[96];
        methods_text(data[0] & 0x7f, allow, sizeof allow);
        CHECK(strlen(allow) < sizeof allow);
    }
    while (off < size) {
        const unsigned char *nl = memchr(data + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
        const char *line = (const char *)data + off;
        const char *colon = memchr(line, ':', len);
        off += len + 1;
        if (!colon)
            continue;
        {
            size_t vlen = len - (size_t)(colon + 1 - line);
            char *value = malloc(vlen + 1); /* exactly: ASan sees any overread */
            struct str name = {line, (size_t)(colon - line)};
            memcpy(value, colon + 1, vlen);
            value[vlen] = '\0';
            vlen = strlen(value); /* as libmicrohttpd hands it over: a C string */
            (void)http_method_parse(value);
            one_header(name, value, vlen);
            free(value);
        }
    }
    return 0;
}
